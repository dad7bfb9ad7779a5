//! The command line: quick mode, which workloads and systems to run, and
//! the sizes and round counts workloads derive from it.

/// What the command line asked for.
pub struct Cfg {
    pub quick: bool,
    /// Workload or table ids given as plain arguments (none: all).
    only: Vec<String>,
    args: Vec<String>,
}

impl Cfg {
    pub fn from_env() -> Cfg {
        let args: Vec<String> = std::env::args().skip(1).collect();
        let quick = args.iter().any(|a| a == "--quick")
            || std::env::var("CALLPOOL_BENCH_QUICK").is_ok_and(|v| !v.is_empty() && v != "0");
        let systems = args
            .iter()
            .filter_map(|a| a.strip_prefix("--system="))
            .map(str::to_owned)
            .collect();
        let _ = crate::report::ONLY_SYSTEMS.set(systems);
        // `cargo bench` passes `--bench`; other flags are ignored too.
        let only = args
            .iter()
            .filter(|a| !a.starts_with('-'))
            .map(|a| a.to_lowercase())
            .collect();
        Cfg { quick, only, args }
    }

    /// A workload size: `full`, or a hundredth of it in quick mode.
    pub fn size(&self, full: u64) -> u64 {
        if self.quick {
            full / 100
        } else {
            full
        }
    }

    /// A round count: `full`, or a single round in quick mode.
    pub fn rounds(&self, full: usize) -> usize {
        if self.quick {
            1
        } else {
            full
        }
    }

    /// The value of a `--NAME=VALUE` flag (`prefix` is `--NAME=`), if given
    /// and parseable.
    pub fn flag<T: std::str::FromStr>(&self, prefix: &str) -> Option<T> {
        self.args
            .iter()
            .find_map(|a| a.strip_prefix(prefix)?.parse().ok())
    }

    /// Whether workload or table `id` was asked for (`w1` selects `w1-2`,
    /// `w1-2` selects the `w1` workload and only that table).
    pub fn wants(&self, id: &str) -> bool {
        self.only.is_empty()
            || self
                .only
                .iter()
                .any(|o| id.starts_with(o.as_str()) || o.starts_with(id))
    }
}
