//! The workloads: what a `Workload` is, the registry of them in the order
//! they run, and `entries`, which turns the systems that accept a kind of
//! run into the rows of one table.

use crate::cfg::Cfg;
use crate::report::{Entry, Obs, Table};
use crate::systems::{self, Runner, System};

mod scale_pending;
mod scale_workers;
mod w1;
mod w2;
mod w3;
mod w4;
mod w5;
mod w6;
mod w7;
mod w8;

/// One workload: plain data, a `const` in its own file.
pub struct Workload {
    /// What a command-line argument selects (`w1` also selects its tables
    /// `w1-1` ...), and the progress line's name.
    pub id: &'static str,
    /// Measures every system that accepts the workload, round by round,
    /// and pushes its table(s).
    pub run: fn(&Cfg, &mut Vec<Table>),
    /// Lines of the targets summary from this run's tables (only the
    /// tables that ran are there).
    pub targets: fn(&[Table], &mut Vec<String>),
    /// Files written from the tables after the summary, in full runs only.
    pub files: fn(&Cfg, &[Table]),
}

impl Workload {
    /// No targets and no files: the defaults for `..Workload::PLAIN`.
    pub const PLAIN: Workload = Workload {
        id: "",
        run: |_, _| {},
        targets: |_, _| {},
        files: |_, _| {},
    };
}

/// Every workload, in the order they run. A new workload is a file in this
/// folder and one line here.
pub static ALL: &[&Workload] = &[
    &w1::W1,
    &w2::W2,
    &w3::W3,
    &w4::W4,
    &w5::W5,
    &w6::W6,
    &w7::W7,
    &w8::W8,
    &scale_workers::SCALE_WORKERS,
    &scale_pending::SCALE_PENDING,
];

/// Whether a table's rows include the API variants (`System::is_variant`).
#[derive(Clone, Copy, PartialEq)]
pub enum Variants {
    Include,
    Skip,
}

/// One row per system, in registry order, for those that accept the run
/// (`runner` returns `Some`); `obs` turns each run's result into the row's
/// observation. The runners are built here, once per table.
pub fn entries<'a, T: 'static>(
    variants: Variants,
    runner: impl Fn(&dyn System) -> Option<Runner<T>>,
    obs: impl Fn(T) -> Obs + Copy + 'a,
) -> Vec<Entry<'a>> {
    systems::ALL
        .iter()
        .filter(|s| variants == Variants::Include || !s.is_variant())
        .filter_map(|s| {
            let mut run = runner(*s)?;
            let entry: Entry<'a> = (s.name(), Box::new(move || obs(run())));
            Some(entry)
        })
        .collect()
}
