//! Reading the toolkit's own files (run files, exports, outputs) with bounded memory: a path
//! that names something else (`/dev/zero`, a FIFO that never ends, a multi-gigabyte log) is an
//! error after [`MAX_FILE_BYTES`], not a process that grows until the machine gives out.

use std::io::Read;
use std::path::Path;

/// The largest file read: far above any export or run file (a day's per-second export is
/// 12.7 MB).
pub const MAX_FILE_BYTES: u64 = 256 << 20;

/// The text of `path`, or an error when it cannot be read, is not UTF-8, or is larger than
/// [`MAX_FILE_BYTES`].
pub fn read_text(path: &Path) -> std::io::Result<String> {
    let mut text = String::new();
    std::fs::File::open(path)?
        .take(MAX_FILE_BYTES + 1)
        .read_to_string(&mut text)?;
    if text.len() as u64 > MAX_FILE_BYTES {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!(
                "larger than {} MiB: not a file this toolkit wrote",
                MAX_FILE_BYTES >> 20
            ),
        ));
    }
    Ok(text)
}

/// Whether a file can be written at `path` later: its folder exists, it is not a folder
/// itself, and it can be opened for writing. Checked before a long run, so that a typo fails
/// at once instead of after the run, with the results lost. Touches nothing: an existing file
/// is opened for appending and left as it is; a new one is created and removed again.
pub fn check_writable(path: &Path) -> Result<(), String> {
    let folder = match path.parent() {
        Some(folder) if !folder.as_os_str().is_empty() => folder,
        _ => Path::new("."),
    };
    if !folder.is_dir() {
        return Err(format!(
            "{}: {} is not a directory",
            path.display(),
            folder.display()
        ));
    }
    if path.is_dir() {
        return Err(format!("{} is a directory: name a file", path.display()));
    }
    let opened = if path.exists() {
        std::fs::OpenOptions::new().append(true).open(path)
    } else {
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
            .inspect(|_| {
                let _ = std::fs::remove_file(path);
            })
    };
    opened
        .map(drop)
        .map_err(|e| format!("{} cannot be written: {e}", path.display()))
}

/// Writes `bytes` to `path` and makes sure they reached the disk (a full disk, `/dev/full`, is
/// an error here rather than a file silently cut short).
pub fn write_whole(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut file = std::fs::File::create(path)?;
    file.write_all(bytes)?;
    file.flush()?;
    match file.sync_all() {
        // Character devices and some pipes cannot be synced; what was written stands.
        Err(e) if e.kind() == std::io::ErrorKind::InvalidInput => Ok(()),
        other => other,
    }
}

/// Refuses two flags naming one file: the second write would replace the first's without a
/// word. `paths` are (flag, path); paths that name the same file through other spellings
/// (`./run.json`, a symbolic link) are the same.
pub fn check_distinct(paths: &[(&str, &Path)]) -> Result<(), String> {
    let key = |path: &Path| {
        let folder = match path.parent() {
            Some(folder) if !folder.as_os_str().is_empty() => folder,
            _ => Path::new("."),
        };
        let folder = folder.canonicalize().unwrap_or_else(|_| folder.to_owned());
        let whole = folder.join(path.file_name().unwrap_or_default());
        whole.canonicalize().unwrap_or(whole)
    };
    for (i, (flag, path)) in paths.iter().enumerate() {
        for (other, other_path) in &paths[..i] {
            if key(path) == key(other_path) {
                return Err(format!(
                    "{flag} {} names the same file as {other}: each needs its own",
                    path.display()
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_endless_file_is_refused_in_bounded_memory() {
        let err = read_text(Path::new("/dev/zero")).unwrap_err();
        assert!(err.to_string().contains("larger than 256 MiB"), "{err}");
        let err = read_text(Path::new("/dev/urandom")).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
    }

    #[test]
    fn a_file_to_write_needs_its_folder_and_must_not_be_one() {
        assert_eq!(check_writable(Path::new("run.json")), Ok(()));
        assert!(!Path::new("run.json").exists(), "the probe is removed");
        assert_eq!(check_writable(Path::new("/tmp/run.json")), Ok(()));
        assert_eq!(
            check_writable(Path::new("/nonexistent/run.json")),
            Err("/nonexistent/run.json: /nonexistent is not a directory".to_owned())
        );
        assert_eq!(
            check_writable(Path::new("/tmp")),
            Err("/tmp is a directory: name a file".to_owned())
        );
        // An existing file is left as it was.
        let path = std::env::temp_dir().join(format!("contract-keep-{}", std::process::id()));
        std::fs::write(&path, "kept").unwrap();
        assert_eq!(check_writable(&path), Ok(()));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "kept");
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn a_file_that_cannot_be_written_is_said_before() {
        // No file can be created in /proc, even by root.
        let err = check_writable(Path::new("/proc/run.json")).unwrap_err();
        assert!(
            err.starts_with("/proc/run.json cannot be written: "),
            "{err}"
        );
    }

    #[test]
    fn a_file_is_read_whole() {
        let path = std::env::temp_dir().join(format!("contract-file-{}", std::process::id()));
        std::fs::write(&path, "{\"a\":1}").unwrap();
        assert_eq!(read_text(&path).unwrap(), "{\"a\":1}");
        std::fs::remove_file(&path).unwrap();
        assert!(read_text(&path).is_err());
    }
}
