//! What this process holds, from `/proc/self`: resident memory, threads, open file
//! descriptors. For soak tests that must end where they started.

use std::fmt;

/// One reading of the process's resources.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProcStats {
    /// Resident set size in KiB (`VmRSS`).
    pub rss_kib: u64,
    /// Threads of the process (`Threads`).
    pub threads: u64,
    /// Open file descriptors (entries of `/proc/self/fd`, less the one reading it).
    pub fds: u64,
}

impl ProcStats {
    /// Reads the current values.
    ///
    /// # Panics
    ///
    /// Where `/proc/self` does not exist or lacks the fields (not Linux).
    pub fn now() -> ProcStats {
        let status = std::fs::read_to_string("/proc/self/status")
            .expect("/proc/self/status is readable (Linux)");
        let field = |name: &str| -> u64 {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("{name} missing from /proc/self/status"))
        };
        // read_dir holds one descriptor of its own while listing.
        let fds = std::fs::read_dir("/proc/self/fd")
            .expect("/proc/self/fd is readable (Linux)")
            .count() as u64;
        ProcStats {
            rss_kib: field("VmRSS:"),
            threads: field("Threads:"),
            fds: fds.saturating_sub(1),
        }
    }

    /// Names of the process's threads with how many carry each, sorted: what to print when
    /// a thread count is off.
    pub fn thread_names() -> Vec<(String, usize)> {
        let mut names = std::collections::BTreeMap::new();
        if let Ok(dir) = std::fs::read_dir("/proc/self/task") {
            for t in dir.flatten() {
                let name = std::fs::read_to_string(t.path().join("comm"))
                    .map(|s| s.trim().to_owned())
                    .unwrap_or_else(|_| "?".into());
                *names.entry(name).or_insert(0) += 1;
            }
        }
        names.into_iter().collect()
    }

    /// Targets of the open file descriptors, with counts (`socket:[…]` collapsed to
    /// `socket`), sorted: what to print when a descriptor count is off.
    pub fn fd_targets() -> Vec<(String, usize)> {
        let mut targets = std::collections::BTreeMap::new();
        if let Ok(dir) = std::fs::read_dir("/proc/self/fd") {
            for fd in dir.flatten() {
                let t = std::fs::read_link(fd.path())
                    .map(|p| p.to_string_lossy().into_owned())
                    .unwrap_or_else(|_| "?".into());
                let kind = match t.split_once(":[") {
                    Some((k, _)) => k.to_owned(),
                    None => t,
                };
                *targets.entry(kind).or_insert(0) += 1;
            }
        }
        targets.into_iter().collect()
    }
}

impl fmt::Display for ProcStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "RSS {:.1} MiB, {} threads, {} fds",
            self.rss_kib as f64 / 1024.0,
            self.threads,
            self.fds
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        // Other tests run in parallel in this binary, so only plausibility is checked.
        let a = ProcStats::now();
        assert!(a.rss_kib > 0 && a.threads >= 1 && a.fds >= 3, "{a:?}");
        assert!(!ProcStats::thread_names().is_empty());
        assert!(!ProcStats::fd_targets().is_empty());
        assert!(a.to_string().contains("threads"));
    }
}
