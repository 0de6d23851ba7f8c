//! Unpacking a function's code zip, as Lambda does: every file with its Unix mode, nothing
//! outside the target folder, stored or deflated entries only (what `cdk deploy` and `zip`
//! write), and a bound on what a small zip may inflate to.
//!
//! The format, as far as this needs it: the end-of-central-directory record (found from the
//! end) gives the central directory's offset and entry count; each central entry gives the
//! compression method, sizes, Unix mode (`external attributes >> 16`), name and the offset of
//! its local header, after which the data starts.

use std::io::Read;
use std::path::{Component, Path, PathBuf};

/// Most an archive may inflate to: a Lambda deployment package is at most 250 MB unzipped.
pub const MAX_UNZIPPED_BYTES: u64 = 250 * 1024 * 1024;

const END_OF_DIRECTORY: u32 = 0x0605_4b50;
const CENTRAL_ENTRY: u32 = 0x0201_4b50;
const LOCAL_HEADER: u32 = 0x0403_4b50;

fn u16_at(bytes: &[u8], at: usize) -> anyhow::Result<u16> {
    let b = bytes
        .get(at..at + 2)
        .ok_or_else(|| anyhow::anyhow!("the zip is cut short at byte {at}"))?;
    Ok(u16::from_le_bytes([b[0], b[1]]))
}

fn u32_at(bytes: &[u8], at: usize) -> anyhow::Result<u32> {
    let b = bytes
        .get(at..at + 4)
        .ok_or_else(|| anyhow::anyhow!("the zip is cut short at byte {at}"))?;
    Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// One file or folder of the archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Its path in the archive.
    pub name: String,
    /// Unix mode bits, 0 when the archive has none.
    pub mode: u32,
    /// Its contents (empty for a folder).
    pub data: Vec<u8>,
}

/// Reads every entry of `zip`.
pub fn entries(zip: &[u8]) -> anyhow::Result<Vec<Entry>> {
    let end = (0..zip.len().saturating_sub(21))
        .rev()
        .take(65_536 + 22)
        .find(|&at| u32_at(zip, at).ok() == Some(END_OF_DIRECTORY))
        .ok_or_else(|| anyhow::anyhow!("not a zip: no end of central directory"))?;
    let count = u16_at(zip, end + 10)? as usize;
    let mut at = u32_at(zip, end + 16)? as usize;
    let mut entries = Vec::with_capacity(count);
    let mut total: u64 = 0;
    for _ in 0..count {
        anyhow::ensure!(
            u32_at(zip, at)? == CENTRAL_ENTRY,
            "bad central directory entry at {at}"
        );
        let method = u16_at(zip, at + 10)?;
        let compressed = u32_at(zip, at + 20)? as usize;
        let size = u32_at(zip, at + 24)? as u64;
        let name_len = u16_at(zip, at + 28)? as usize;
        let extra_len = u16_at(zip, at + 30)? as usize;
        let comment_len = u16_at(zip, at + 32)? as usize;
        let mode = u32_at(zip, at + 38)? >> 16;
        let local = u32_at(zip, at + 42)? as usize;
        let name = zip
            .get(at + 46..at + 46 + name_len)
            .ok_or_else(|| anyhow::anyhow!("the zip is cut short in a name"))?;
        let name = String::from_utf8_lossy(name).into_owned();
        at += 46 + name_len + extra_len + comment_len;

        total += size;
        anyhow::ensure!(
            total <= MAX_UNZIPPED_BYTES,
            "the zip unpacks to more than {MAX_UNZIPPED_BYTES} bytes"
        );
        anyhow::ensure!(
            u32_at(zip, local)? == LOCAL_HEADER,
            "bad local header for {name}"
        );
        let start =
            local + 30 + u16_at(zip, local + 26)? as usize + u16_at(zip, local + 28)? as usize;
        let raw = zip
            .get(start..start + compressed)
            .ok_or_else(|| anyhow::anyhow!("the zip is cut short in {name}"))?;
        let data = match method {
            0 => raw.to_vec(),
            8 => {
                let mut data = Vec::with_capacity(size as usize);
                flate2::read::DeflateDecoder::new(raw)
                    .take(size + 1)
                    .read_to_end(&mut data)?;
                data
            }
            other => anyhow::bail!("{name}: compression method {other} (only stored and deflate)"),
        };
        anyhow::ensure!(
            data.len() as u64 == size,
            "{name}: {} bytes unpacked, the zip says {size}",
            data.len()
        );
        entries.push(Entry { name, mode, data });
    }
    Ok(entries)
}

/// Where `name` goes under `dir`; `None` for a path that would leave it.
fn target(dir: &Path, name: &str) -> Option<PathBuf> {
    let relative = Path::new(name);
    relative
        .components()
        .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
        .then(|| dir.join(relative))
}

/// Writes every entry of `zip` under `dir`, with its mode.
pub fn unzip(zip: &[u8], dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    for entry in entries(zip)? {
        let path = target(dir, &entry.name).ok_or_else(|| {
            anyhow::anyhow!("{:?} would be written outside the folder", entry.name)
        })?;
        if entry.name.ends_with('/') {
            std::fs::create_dir_all(&path)?;
            continue;
        }
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&path, &entry.data)?;
        let mode = entry.mode & 0o7777;
        if mode != 0 {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A zip of `files` (`name, mode, data, deflate?`), as `zip` writes one.
    fn build(files: &[(&str, u32, &[u8], bool)]) -> Vec<u8> {
        use std::io::Write;
        let mut out = Vec::new();
        let mut central = Vec::new();
        for &(name, mode, data, deflate) in files {
            let stored = if deflate {
                let mut e =
                    flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
                e.write_all(data).unwrap();
                e.finish().unwrap()
            } else {
                data.to_vec()
            };
            let method: u16 = if deflate { 8 } else { 0 };
            let offset = out.len() as u32;
            out.extend_from_slice(&LOCAL_HEADER.to_le_bytes());
            out.extend_from_slice(&[20, 0, 0, 0]);
            out.extend_from_slice(&method.to_le_bytes());
            out.extend_from_slice(&[0; 8]); // time, date, crc (not checked)
            out.extend_from_slice(&(stored.len() as u32).to_le_bytes());
            out.extend_from_slice(&(data.len() as u32).to_le_bytes());
            out.extend_from_slice(&(name.len() as u16).to_le_bytes());
            out.extend_from_slice(&0u16.to_le_bytes());
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(&stored);
            central.extend_from_slice(&CENTRAL_ENTRY.to_le_bytes());
            central.extend_from_slice(&[20, 3, 20, 0, 0, 0]);
            central.extend_from_slice(&method.to_le_bytes());
            central.extend_from_slice(&[0; 8]);
            central.extend_from_slice(&(stored.len() as u32).to_le_bytes());
            central.extend_from_slice(&(data.len() as u32).to_le_bytes());
            central.extend_from_slice(&(name.len() as u16).to_le_bytes());
            central.extend_from_slice(&[0; 8]);
            central.extend_from_slice(&(mode << 16).to_le_bytes());
            central.extend_from_slice(&offset.to_le_bytes());
            central.extend_from_slice(name.as_bytes());
        }
        let directory = out.len() as u32;
        out.extend_from_slice(&central);
        out.extend_from_slice(&END_OF_DIRECTORY.to_le_bytes());
        out.extend_from_slice(&[0; 4]);
        out.extend_from_slice(&(files.len() as u16).to_le_bytes());
        out.extend_from_slice(&(files.len() as u16).to_le_bytes());
        out.extend_from_slice(&(central.len() as u32).to_le_bytes());
        out.extend_from_slice(&directory.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out
    }

    #[test]
    fn files_come_out_with_their_modes() {
        let dir = std::env::temp_dir().join(format!("unzip-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let body = b"#!/bin/sh\necho hi\n".repeat(50);
        let zip = build(&[
            ("bootstrap", 0o100755, &body, true),
            ("lib/", 0o40755, b"", false),
            ("lib/data.txt", 0o100644, b"plain", false),
        ]);
        unzip(&zip, &dir).unwrap();
        use std::os::unix::fs::PermissionsExt;
        let bootstrap = dir.join("bootstrap");
        assert_eq!(std::fs::read(&bootstrap).unwrap(), body);
        assert_eq!(
            std::fs::metadata(&bootstrap).unwrap().permissions().mode() & 0o777,
            0o755
        );
        assert_eq!(std::fs::read(dir.join("lib/data.txt")).unwrap(), b"plain");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_path_out_of_the_folder_or_a_broken_zip_is_refused() {
        let dir = std::env::temp_dir().join(format!("unzip-evil-{}", std::process::id()));
        let evil = build(&[("../evil", 0o100644, b"x", false)]);
        let err = unzip(&evil, &dir).unwrap_err().to_string();
        assert!(err.contains("outside the folder"), "{err}");
        assert!(!dir.parent().unwrap().join("evil").exists());
        assert!(entries(b"not a zip at all, just some text")
            .unwrap_err()
            .to_string()
            .contains("not a zip"));
        let zip = build(&[("a", 0, b"hello", false)]);
        assert!(entries(&zip[..zip.len() - 30]).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
