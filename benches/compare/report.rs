//! Interleaved rounds, medians and ratios, the markdown tables, the SVG chart.

use std::fmt::Write as _;
use std::time::Duration;

use crate::procfs;

/// One system's measurement in one round: the headline value (lower is
/// better) and any side figures.
pub struct Obs {
    pub value: f64,
    pub extras: Vec<(&'static str, f64)>,
}

impl Obs {
    pub fn new(value: f64) -> Obs {
        Obs {
            value,
            extras: Vec::new(),
        }
    }

    pub fn with(mut self, name: &'static str, value: f64) -> Obs {
        self.extras.push((name, value));
        self
    }
}

pub struct Row {
    pub name: String,
    /// The headline value, one per round.
    pub values: Vec<f64>,
    /// Side figures, one per round each.
    pub extras: Vec<(&'static str, Vec<f64>)>,
}

pub struct Table {
    pub id: &'static str,
    pub title: String,
    pub unit: &'static str,
    pub rows: Vec<Row>,
    pub notes: Vec<String>,
}

/// One row of a table: its name and one run of the workload per call.
pub type Entry<'a> = (&'static str, Box<dyn FnMut() -> Obs + 'a>);

pub const BASELINE: &str = "callpool";

/// The two floors (`systems/floor.rs`): each table with either row also
/// gets every row's ratio to it, per round (issue 13).
pub const FLOORS: [&str; 2] = ["floor", "floor/crossbeam"];

/// `--system=NAME` arguments: run only these systems (for profiling).
pub static ONLY_SYSTEMS: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();

fn selected(name: &str) -> bool {
    ONLY_SYSTEMS
        .get()
        .is_none_or(|only| only.is_empty() || only.iter().any(|o| o == name))
}

/// Runs every system once per round, in the same order each round
/// (A B C D, A B C D, ...). Between two runs it waits until the threads of
/// the previous system have exited, so no system runs next to another's.
pub fn interleave(
    id: &'static str,
    title: String,
    unit: &'static str,
    rounds: usize,
    mut systems: Vec<Entry<'_>>,
) -> Table {
    let base_threads = procfs::task_count();
    let mut rows: Vec<Row> = systems
        .iter()
        .map(|(name, _)| Row {
            name: (*name).to_owned(),
            values: Vec::new(),
            extras: Vec::new(),
        })
        .collect();
    for round in 0..rounds {
        for (row, (name, run)) in rows.iter_mut().zip(systems.iter_mut()) {
            if !selected(name) {
                continue;
            }
            let obs = run();
            eprintln!(
                "  [{id}] round {}/{rounds} {name:<22} {} {unit}",
                round + 1,
                num(obs.value)
            );
            row.values.push(obs.value);
            for (key, v) in obs.extras {
                match row.extras.iter_mut().find(|(k, _)| *k == key) {
                    Some((_, vs)) => vs.push(v),
                    None => row.extras.push((key, vec![v])),
                }
            }
            settle(base_threads);
        }
    }
    Table {
        id,
        title,
        unit,
        rows,
        notes: Vec::new(),
    }
}

/// Waits (up to 5 s) until the process is back to `threads` threads.
pub fn settle(threads: usize) {
    let start = std::time::Instant::now();
    while procfs::task_count() > threads && start.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(1));
    }
}

pub fn median(v: &[f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let mut s: Vec<f64> = v.iter().copied().filter(|x| !x.is_nan()).collect();
    if s.is_empty() {
        return f64::NAN;
    }
    s.sort_by(f64::total_cmp);
    let m = s.len() / 2;
    if s.len() % 2 == 1 {
        s[m]
    } else {
        (s[m - 1] + s[m]) / 2.0
    }
}

/// Smallest and largest finite values (NaN, NaN if none).
pub fn min_max(v: &[f64]) -> (f64, f64) {
    let finite = v.iter().copied().filter(|x| x.is_finite());
    finite.fold((f64::NAN, f64::NAN), |(lo, hi), x| {
        (
            if lo.is_nan() { x } else { lo.min(x) },
            if hi.is_nan() { x } else { hi.max(x) },
        )
    })
}

/// A ratio with two decimals, or `n/a` (0 / 0 and the like).
pub fn ratio(v: f64) -> String {
    if v.is_finite() {
        format!("{v:.2}")
    } else {
        "n/a".into()
    }
}

pub fn num(v: f64) -> String {
    let a = v.abs();
    if !v.is_finite() {
        "n/a".into()
    } else if a >= 100.0 || a == 0.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

impl Table {
    pub fn row(&self, name: &str) -> Option<&Row> {
        self.rows.iter().find(|r| r.name == name)
    }

    /// Whether `name` ran in this table (a system left out by
    /// `--system` still has a row, without values).
    pub fn ran(&self, name: &str) -> bool {
        self.row(name).is_some_and(|r| !r.values.is_empty())
    }

    pub fn median_of(&self, name: &str) -> f64 {
        self.row(name).map_or(f64::NAN, |r| median(&r.values))
    }

    pub fn extra_median(&self, name: &str, key: &str) -> f64 {
        self.row(name)
            .and_then(|r| r.extras.iter().find(|(k, _)| *k == key))
            .map_or(f64::NAN, |(_, v)| median(v))
    }

    /// Per round: `name`'s value divided by the baseline's in that round.
    pub fn ratios(&self, name: &str) -> Vec<f64> {
        self.ratios_to(name, BASELINE)
    }

    /// Per round: `name`'s value divided by `base`'s in that round.
    pub fn ratios_to(&self, name: &str, base: &str) -> Vec<f64> {
        match (self.row(name), self.row(base)) {
            (Some(r), Some(b)) => r.values.iter().zip(&b.values).map(|(x, y)| x / y).collect(),
            _ => Vec::new(),
        }
    }

    /// Per round: `f` of the round's values by system name.
    pub fn per_round(&self, f: impl Fn(&dyn Fn(&str) -> f64) -> f64) -> Vec<f64> {
        let rounds = self.rows.iter().map(|r| r.values.len()).max().unwrap_or(0);
        (0..rounds)
            .map(|i| {
                let get = |name: &str| {
                    self.row(name)
                        .and_then(|r| r.values.get(i).copied())
                        .unwrap_or(f64::NAN)
                };
                f(&get)
            })
            .collect()
    }

    pub fn markdown(&self) -> String {
        let rounds = self.rows.iter().map(|r| r.values.len()).max().unwrap_or(0);
        let mut out = String::new();
        let _ = writeln!(out, "### {}\n", self.title);
        let _ = writeln!(
            out,
            "{rounds} round(s), interleaved. Ratio = system / {BASELINE} in the same round."
        );
        let floors: Vec<&str> = FLOORS
            .into_iter()
            .filter(|f| self.row(f).is_some())
            .collect();
        if !floors.is_empty() {
            let _ = writeln!(
                out,
                "÷ {}: system / that floor in the same round, median (min – max) of the rounds.",
                floors.join(", ÷ ")
            );
        }
        out.push('\n');
        let extras: Vec<&'static str> = {
            let mut keys = Vec::new();
            for r in &self.rows {
                for (k, _) in &r.extras {
                    if !keys.contains(k) {
                        keys.push(*k);
                    }
                }
            }
            keys
        };
        let _ = write!(
            out,
            "| system | median {u} | min – max {u} | ratio (median) | ratio min – max | ratios by round |",
            u = self.unit
        );
        for f in &floors {
            let _ = write!(out, " ÷ {f} |");
        }
        for k in &extras {
            let _ = write!(out, " {k} (median) |");
        }
        out.push('\n');
        out.push_str("|---|---:|---:|---:|---:|---|");
        for _ in floors.iter().chain(&extras) {
            out.push_str("---:|");
        }
        out.push('\n');
        for r in &self.rows {
            let (lo, hi) = min_max(&r.values);
            let ratios = self.ratios(&r.name);
            let (rlo, rhi) = min_max(&ratios);
            let by_round: Vec<String> = ratios.iter().map(|&x| ratio(x)).collect();
            let _ = write!(
                out,
                "| {} | {} | {} – {} | {} | {} – {} | {} |",
                r.name,
                num(median(&r.values)),
                num(lo),
                num(hi),
                ratio(median(&ratios)),
                ratio(rlo),
                ratio(rhi),
                by_round.join(" "),
            );
            for f in &floors {
                let to_floor = self.ratios_to(&r.name, f);
                let (flo, fhi) = min_max(&to_floor);
                let _ = write!(
                    out,
                    " {} ({} – {}) |",
                    ratio(median(&to_floor)),
                    ratio(flo),
                    ratio(fhi)
                );
            }
            for k in &extras {
                let v = r
                    .extras
                    .iter()
                    .find(|(key, _)| key == k)
                    .map_or(f64::NAN, |(_, v)| median(v));
                let _ = write!(out, " {} |", num(v));
            }
            out.push('\n');
        }
        for n in &self.notes {
            let _ = writeln!(out, "\n{n}");
        }
        out
    }
}

/// A line chart: one line per system of `(workers, ns per request)`.
pub fn svg_chart(title: &str, series: &[(String, Vec<(usize, f64)>)]) -> String {
    let (w, h) = (720.0, 440.0);
    let (left, right, top, bottom) = (70.0, 170.0, 40.0, 50.0);
    let plot_w = w - left - right;
    let plot_h = h - top - bottom;
    let xs: Vec<usize> = {
        let mut xs: Vec<usize> = series
            .iter()
            .flat_map(|(_, pts)| pts.iter().map(|p| p.0))
            .collect();
        xs.sort_unstable();
        xs.dedup();
        xs
    };
    let y_max_raw = series
        .iter()
        .flat_map(|(_, pts)| pts.iter().map(|p| p.1))
        .fold(0.0f64, f64::max);
    let step = nice_step(y_max_raw / 5.0);
    let y_max = (y_max_raw / step).ceil().max(1.0) * step;
    let x_at = |i: usize| {
        if xs.len() <= 1 {
            left + plot_w / 2.0
        } else {
            left + plot_w * i as f64 / (xs.len() - 1) as f64
        }
    };
    let y_at = |v: f64| top + plot_h * (1.0 - v / y_max);
    let colors = [
        "#d62728", "#1f77b4", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
        "#bcbd22", "#17becf", "#393b79",
    ];
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="{w}" height="{h}" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{}" y="22" text-anchor="middle" font-size="14">{}</text>"#,
        left + plot_w / 2.0,
        escape(title)
    );
    // Horizontal grid and y labels.
    let mut v = 0.0;
    while v <= y_max + step / 2.0 {
        let y = y_at(v);
        let _ = writeln!(
            s,
            r##"<line x1="{left}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"##,
            left + plot_w,
            left - 6.0,
            y + 4.0,
            num(v)
        );
        v += step;
    }
    for (i, x) in xs.iter().enumerate() {
        let _ = writeln!(
            s,
            r##"<line x1="{xp:.1}" y1="{top}" x2="{xp:.1}" y2="{:.1}" stroke="#eee"/><text x="{xp:.1}" y="{:.1}" text-anchor="middle">{x}</text>"##,
            top + plot_h,
            top + plot_h + 18.0,
            xp = x_at(i)
        );
    }
    let _ = writeln!(
        s,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">worker threads</text>"#,
        left + plot_w / 2.0,
        h - 10.0
    );
    let _ = writeln!(
        s,
        r#"<text transform="translate(18 {:.1}) rotate(-90)" text-anchor="middle">ns per request (median)</text>"#,
        top + plot_h / 2.0
    );
    let _ = writeln!(
        s,
        r#"<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="none" stroke="black"/>"#
    );
    for (k, (name, pts)) in series.iter().enumerate() {
        let color = colors[k % colors.len()];
        let coords: Vec<String> = pts
            .iter()
            .filter_map(|&(x, v)| {
                let i = xs.iter().position(|&q| q == x)?;
                Some(format!("{:.1},{:.1}", x_at(i), y_at(v)))
            })
            .collect();
        let _ = writeln!(
            s,
            r#"<polyline points="{}" fill="none" stroke="{color}" stroke-width="2"/>"#,
            coords.join(" ")
        );
        for c in &coords {
            let (cx, cy) = c.split_once(',').unwrap_or(("0", "0"));
            let _ = writeln!(s, r#"<circle cx="{cx}" cy="{cy}" r="3.5" fill="{color}"/>"#);
        }
        let ly = top + 10.0 + 20.0 * k as f64;
        let lx = left + plot_w + 14.0;
        let _ = writeln!(
            s,
            r#"<line x1="{lx}" y1="{ly}" x2="{:.1}" y2="{ly}" stroke="{color}" stroke-width="2"/><text x="{:.1}" y="{:.1}">{}</text>"#,
            lx + 20.0,
            lx + 26.0,
            ly + 4.0,
            escape(name)
        );
    }
    s.push_str("</svg>\n");
    s
}

fn nice_step(raw: f64) -> f64 {
    if raw <= 0.0 || !raw.is_finite() {
        return 1.0;
    }
    let mag = 10f64.powf(raw.log10().floor());
    let f = raw / mag;
    let nice = if f <= 1.0 {
        1.0
    } else if f <= 2.0 {
        2.0
    } else if f <= 5.0 {
        5.0
    } else {
        10.0
    };
    nice * mag
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
