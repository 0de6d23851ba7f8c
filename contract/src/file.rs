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

/// Whether a file can be written at `path` later: its folder exists. Checked before a long run,
/// so that a typo fails at once instead of after the run, with the results lost.
pub fn check_folder_of(path: &Path) -> Result<(), String> {
    let folder = match path.parent() {
        Some(folder) if !folder.as_os_str().is_empty() => folder,
        _ => Path::new("."),
    };
    if folder.is_dir() {
        Ok(())
    } else {
        Err(format!(
            "{}: {} is not a directory",
            path.display(),
            folder.display()
        ))
    }
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
    fn a_file_to_write_needs_its_folder() {
        assert_eq!(check_folder_of(Path::new("run.json")), Ok(()));
        assert_eq!(check_folder_of(Path::new("/tmp/run.json")), Ok(()));
        assert_eq!(
            check_folder_of(Path::new("/nonexistent/run.json")),
            Err("/nonexistent/run.json: /nonexistent is not a directory".to_owned())
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
