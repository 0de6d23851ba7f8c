//! A test's own folder under the system's temporary folder, removed when the test is done.
//!
//! A folder is named `NAME-PID`. Dropping the [`Scratch`] removes it; a folder that outlives its
//! process (a test process killed, or one held by a `static` that is never dropped) is removed by
//! the next test that asks for the same name, once no process with that PID is alive. So a test
//! suite run again and again on one machine keeps at most one stale copy per name, where a
//! sandbox's folder holds hundreds of megabytes of function binaries.

use std::path::{Path, PathBuf};

/// A test's folder; removed with everything in it when dropped.
pub struct Scratch {
    path: PathBuf,
}

impl Scratch {
    /// An empty folder `NAME-PID` under the temporary folder; stale `NAME-*` folders of
    /// processes that have ended are removed first.
    pub fn new(name: &str) -> Scratch {
        let base = std::env::temp_dir();
        remove_stale(&base, name);
        let path = base.join(format!("{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap_or_else(|e| panic!("create {}: {e}", path.display()));
        Scratch { path }
    }

    /// The folder.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `path/relative`.
    pub fn join(&self, relative: impl AsRef<Path>) -> PathBuf {
        self.path.join(relative)
    }

    /// Keeps the folder for the rest of the process (for a `static`); the next test that asks
    /// for the same name after this process ends removes it.
    pub fn keep(self) -> PathBuf {
        let path = self.path.clone();
        std::mem::forget(self);
        path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// Removes `base/NAME-PID` folders whose process no longer exists.
fn remove_stale(base: &Path, name: &str) {
    let Ok(entries) = std::fs::read_dir(base) else {
        return;
    };
    let prefix = format!("{name}-");
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let Some(pid) = file_name
            .to_str()
            .and_then(|n| n.strip_prefix(&prefix))
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dropped_folder_is_gone_and_a_dead_process_s_folder_is_swept() {
        let scratch = Scratch::new("testkit-scratch");
        std::fs::write(scratch.join("file"), "x").unwrap();
        let path = scratch.path().to_path_buf();
        drop(scratch);
        assert!(!path.exists(), "dropped, yet {} is there", path.display());

        // No process has PID u32::MAX - 1 (Linux's pid_max is at most 2^22).
        let stale = std::env::temp_dir().join(format!("testkit-scratch-{}", u32::MAX - 1));
        std::fs::create_dir_all(stale.join("inner")).unwrap();
        let kept = Scratch::new("testkit-scratch").keep();
        assert!(
            !stale.exists(),
            "{} of a dead process was kept",
            stale.display()
        );
        assert!(kept.exists());
        std::fs::remove_dir_all(kept).unwrap();
    }
}
