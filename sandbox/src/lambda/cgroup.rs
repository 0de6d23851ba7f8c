//! A function's CPU share and memory limit, as Lambda gives them: each worker process (one
//! execution environment) runs in a Linux control group of its own, with a CPU quota of (memory
//! size / 1,769 MB) of one core (at 1,769 MB a function has one vCPU's worth) and a memory limit
//! of its memory size, past which the kernel kills the worker as Lambda does. The quota is
//! counted over a 20 ms period, so that a short invocation's duration follows its share (over a
//! 100 ms period, a 5 ms burn at 256 MB either fits in the period's 14 ms or waits 100 ms); 20 ms
//! is the shortest period whose share at 128 MB stays above the kernel's 1 ms floor.
//!
//! Both hierarchies are handled: cgroup v2 (`cpu.max`, `memory.max`) when the unified hierarchy
//! has the `cpu` and `memory` controllers, else v1 (`cpu.cfs_quota_us`,
//! `memory.limit_in_bytes`, one folder per controller). The sandbox's groups go under the
//! groups it runs in itself (`/proc/self/cgroup`), in `sandbox-<pid>-<n>/<function>`, and are removed
//! when the sandbox stops. A worker joins its group before it runs its first instruction (the
//! child writes itself into the group between fork and exec).

use std::ffi::CString;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The memory size with one full vCPU's worth of CPU (AWS Lambda developer guide, "Configure
/// Lambda function memory").
pub const FULL_CORE_MB: u32 = 1_769;

/// The CFS period the quota is a share of.
const PERIOD_US: u64 = 20_000;

/// Where the sandbox's control groups go, on this machine.
#[derive(Debug, Clone)]
enum Hierarchy {
    /// cgroup v2: one folder for both controllers.
    Unified(PathBuf),
    /// cgroup v1: the `cpu` and the `memory` controllers' folders.
    Split { cpu: PathBuf, memory: PathBuf },
}

/// The sandbox's own control groups (`sandbox-<pid>-<n>` in each hierarchy), removed on drop.
#[derive(Debug)]
pub struct CpuShares {
    hierarchy: Hierarchy,
}

/// One function's control groups, one per worker (`<function>/worker-<i>`): the quota, the
/// limit, and how a worker joins its group.
#[derive(Debug)]
pub struct FunctionGroup {
    /// Per worker, the files a process writes `0` into to join (one per hierarchy).
    procs: Vec<Vec<CString>>,
    /// The workers' folders, where the limits are set.
    folders: Vec<PathBuf>,
    /// The function's folders, holding the workers'.
    parents: Vec<PathBuf>,
    /// The memory size the limits are set for, MB.
    memory_mb: std::sync::atomic::AtomicU32,
    /// The kernel's memory kills counted so far.
    oom_seen: std::sync::atomic::AtomicU64,
    /// The sandbox's groups, removed once the last function's group is.
    _shares: std::sync::Arc<CpuShares>,
}

impl Drop for FunctionGroup {
    fn drop(&mut self) {
        for folder in self.folders.iter().chain(&self.parents) {
            remove_group(folder);
        }
    }
}

impl CpuShares {
    /// The sandbox's groups under the groups this process runs in, created; the error is the one
    /// line to say when control groups cannot be written here.
    pub fn create() -> Result<CpuShares, String> {
        let own = std::fs::read_to_string("/proc/self/cgroup")
            .map_err(|e| format!("/proc/self/cgroup: {e}"))?;
        // One set per call: tests in one process each get their own.
        static MADE: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let made = MADE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = format!("sandbox-{}-{made}", std::process::id());
        let hierarchy = match unified(&own) {
            Some(base) => Hierarchy::Unified(base.join(&name)),
            None => Hierarchy::Split {
                cpu: v1_folder(&own, "cpu")?.join(&name),
                memory: v1_folder(&own, "memory")?.join(&name),
            },
        };
        let shares = CpuShares { hierarchy };
        for folder in shares.folders() {
            std::fs::create_dir_all(folder)
                .map_err(|e| format!("cannot create {}: {e}", folder.display()))?;
        }
        if let Hierarchy::Unified(folder) = &shares.hierarchy {
            // Children get the controllers only when their parent hands them down.
            write(&folder.join("cgroup.subtree_control"), "+cpu +memory")?;
        }
        Ok(shares)
    }

    fn folders(&self) -> Vec<&Path> {
        match &self.hierarchy {
            Hierarchy::Unified(folder) => vec![folder],
            Hierarchy::Split { cpu, memory } => vec![cpu, memory],
        }
    }

    /// The groups of function `name`'s `workers`, each with the CPU share and memory limit of
    /// `memory_mb`.
    pub fn function(
        self: &std::sync::Arc<Self>,
        name: &str,
        memory_mb: u32,
        workers: usize,
    ) -> Result<FunctionGroup, String> {
        let parents = match &self.hierarchy {
            Hierarchy::Unified(folder) => vec![folder.join(name)],
            Hierarchy::Split { cpu, memory } => vec![cpu.join(name), memory.join(name)],
        };
        let unified = matches!(self.hierarchy, Hierarchy::Unified(_));
        let group = FunctionGroup::at(parents, workers.max(1), unified, memory_mb, self.clone())?;
        group.set_memory(memory_mb)?;
        Ok(group)
    }
}

impl Drop for CpuShares {
    fn drop(&mut self) {
        // The functions' groups are gone by now (each holds this one).
        for folder in self.folders() {
            remove_group(folder);
        }
    }
}

/// Removes a group folder, waiting briefly for processes that are still exiting.
fn remove_group(folder: &Path) {
    for _ in 0..25 {
        if std::fs::remove_dir(folder).is_ok() || !folder.exists() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

impl FunctionGroup {
    fn at(
        parents: Vec<PathBuf>,
        workers: usize,
        unified: bool,
        memory_mb: u32,
        shares: std::sync::Arc<CpuShares>,
    ) -> Result<FunctionGroup, String> {
        for parent in &parents {
            std::fs::create_dir_all(parent)
                .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
            if unified {
                write(&parent.join("cgroup.subtree_control"), "+cpu +memory")?;
            }
        }
        let (mut procs, mut folders) = (Vec::new(), Vec::new());
        for worker in 0..workers {
            let mut joins = Vec::new();
            for parent in &parents {
                let folder = parent.join(format!("worker-{worker}"));
                std::fs::create_dir_all(&folder)
                    .map_err(|e| format!("cannot create {}: {e}", folder.display()))?;
                let file = folder.join("cgroup.procs");
                joins.push(
                    CString::new(file.as_os_str().as_encoded_bytes())
                        .map_err(|_| format!("{}: a path with a NUL byte", file.display()))?,
                );
                folders.push(folder);
            }
            procs.push(joins);
        }
        Ok(FunctionGroup {
            procs,
            folders,
            parents,
            memory_mb: memory_mb.into(),
            oom_seen: Default::default(),
            _shares: shares,
        })
    }

    /// The memory size the group enforces, MB.
    pub fn memory_mb(&self) -> u32 {
        self.memory_mb.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Sets the CPU quota and memory limit of a function of `memory_mb`; the next worker runs
    /// with them (those running now too: a group's limits apply to all its processes).
    pub fn set_memory(&self, memory_mb: u32) -> Result<(), String> {
        let quota_us = cpu_quota_us(memory_mb);
        let bytes = u64::from(memory_mb) << 20;
        for folder in &self.folders {
            if folder.join("cpu.max").exists() {
                write(&folder.join("cpu.max"), &format!("{quota_us} {PERIOD_US}"))?;
            }
            if folder.join("memory.max").exists() {
                write(&folder.join("memory.max"), &bytes.to_string())?;
                // Past the limit a worker is killed, not swapped out.
                let _ = std::fs::write(folder.join("memory.swap.max"), "0");
            }
            if folder.join("cpu.cfs_quota_us").exists() {
                write(&folder.join("cpu.cfs_period_us"), &PERIOD_US.to_string())?;
                write(&folder.join("cpu.cfs_quota_us"), &quota_us.to_string())?;
            }
            if folder.join("memory.limit_in_bytes").exists() {
                write(&folder.join("memory.limit_in_bytes"), &bytes.to_string())?;
                let _ = std::fs::write(folder.join("memory.swappiness"), "0");
            }
        }
        self.memory_mb
            .store(memory_mb, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    /// Makes `command`'s process, worker `index`, join its group before it runs (between fork
    /// and exec).
    pub fn enter_on_start(
        self: &std::sync::Arc<Self>,
        index: usize,
        command: &mut tokio::process::Command,
    ) {
        let group = self.clone();
        let index = index % self.procs.len();
        // SAFETY: between fork and exec the closure only calls open(2), write(2) and close(2)
        // on paths built beforehand: async-signal-safe, no allocation, no lock.
        unsafe {
            command.pre_exec(move || {
                for file in &group.procs[index] {
                    let fd = libc::open(file.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
                    if fd < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    // "0": the writing process itself.
                    let written = libc::write(fd, b"0".as_ptr().cast(), 1);
                    libc::close(fd);
                    if written != 1 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                Ok(())
            });
        }
    }

    /// Whether the kernel killed a process of this group for its memory limit since the last
    /// call (v1 `memory.oom_control`'s `oom_kill`, v2 `memory.events`' `oom_kill`).
    pub fn killed_for_memory(&self) -> bool {
        let now = self.oom_kills();
        let before = self
            .oom_seen
            .swap(now, std::sync::atomic::Ordering::Relaxed);
        now > before
    }

    fn oom_kills(&self) -> u64 {
        self.folders
            .iter()
            .flat_map(|f| [f.join("memory.oom_control"), f.join("memory.events")])
            .filter_map(|file| std::fs::read_to_string(file).ok())
            .flat_map(|text| {
                text.lines()
                    .filter_map(|l| l.strip_prefix("oom_kill "))
                    .filter_map(|n| n.trim().parse::<u64>().ok())
                    .collect::<Vec<_>>()
            })
            .sum()
    }
}

/// The CFS quota of a function of `memory_mb`: its share of one core per period (at least 1 ms,
/// the kernel's floor).
pub fn cpu_quota_us(memory_mb: u32) -> u64 {
    (PERIOD_US * u64::from(memory_mb) / u64::from(FULL_CORE_MB)).max(1_000)
}

/// The CPU share of a function of `memory_mb`, in cores.
pub fn cpu_share(memory_mb: u32) -> f64 {
    cpu_quota_us(memory_mb) as f64 / PERIOD_US as f64
}

fn write(file: &Path, value: &str) -> Result<(), String> {
    std::fs::write(file, value).map_err(|e| format!("cannot write {}: {e}", file.display()))
}

/// The unified hierarchy's folder of this process, when it has the `cpu` and `memory`
/// controllers.
fn unified(own: &str) -> Option<PathBuf> {
    let root = Path::new("/sys/fs/cgroup");
    let controllers = std::fs::read_to_string(root.join("cgroup.controllers")).ok()?;
    let has = |c: &str| controllers.split_whitespace().any(|x| x == c);
    if !(has("cpu") && has("memory")) {
        return None;
    }
    let path = own.lines().find_map(|l| l.strip_prefix("0::"))?;
    Some(root.join(path.trim_start_matches('/')))
}

/// The v1 `controller` hierarchy's folder of this process.
fn v1_folder(own: &str, controller: &str) -> Result<PathBuf, String> {
    let path = own
        .lines()
        .filter_map(|l| l.split_once(':').map(|(_, rest)| rest))
        .filter_map(|rest| rest.split_once(':'))
        .find(|(controllers, _)| controllers.split(',').any(|c| c == controller))
        .map(|(_, path)| path)
        .ok_or_else(|| format!("no {controller} control group is mounted"))?;
    let mount = Path::new("/sys/fs/cgroup").join(controller);
    if !mount.join("cgroup.procs").exists() {
        return Err(format!(
            "{} is not a {controller} hierarchy",
            mount.display()
        ));
    }
    Ok(mount.join(path.trim_start_matches('/')))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cpu_share_follows_the_memory_size() {
        assert_eq!(cpu_quota_us(1_769), 20_000);
        assert_eq!(cpu_quota_us(128), 1_447, "above the kernel's 1 ms floor");
        assert_eq!(cpu_quota_us(256), 2_894);
        assert_eq!(cpu_quota_us(3_538), 40_000);
        assert_eq!(cpu_quota_us(1), 1_000, "the kernel's floor");
        assert!((cpu_share(512) - 0.2894).abs() < 1e-4);
    }

    #[test]
    fn a_v1_controller_s_folder_is_read_from_proc_self_cgroup() {
        let own = "4:memory:/process_api/d05c\n1:cpu:/\n2:cpuacct:/\n0::/\n";
        if Path::new("/sys/fs/cgroup/memory/cgroup.procs").exists() {
            assert_eq!(
                v1_folder(own, "memory").unwrap(),
                Path::new("/sys/fs/cgroup/memory/process_api/d05c")
            );
        }
        assert!(v1_folder("0::/\n", "cpu")
            .unwrap_err()
            .contains("no cpu control group"));
    }
}
