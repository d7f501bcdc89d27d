//! Times the 30-day union of stored user sketches two ways on one
//! PostgreSQL store: in SQL (`hll_union_agg`, the `hll` extension) and in
//! the program (read every day's sketch, merge). bench/sketch-union runs it.
//!
//!   cargo run --release -p v6scope-store --example sketch_union -- URL DAYS ORGS VALUES_PER_DAY

use std::time::Instant;
use v6scope_flow::users::Sketch;
use v6scope_store::*;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let url = &args[1];
    let days: u32 = args[2].parse().unwrap();
    let orgs: u32 = args[3].parse().unwrap();
    let per_day: u32 = args[4].parse().unwrap();
    let mut store = open(&url.parse::<Location>().unwrap()).unwrap();
    let started = Instant::now();
    for day in 0..days {
        for org in 0..orgs {
            let mut s = Sketch::default();
            // Half of each day's subscribers were seen the day before.
            let base = u128::from(day) * u128::from(per_day / 2);
            for i in 0..per_day {
                s.insert((u128::from(org) << 64) | (base + u128::from(i)));
            }
            let bytes = s.to_bytes();
            store
                .merge_sketch(
                    &format!("2026-10-{:02}", day + 1),
                    &format!("org-{org}"),
                    "subscribers",
                    &mut |_| Ok(bytes.clone()),
                )
                .unwrap();
        }
    }
    eprintln!(
        "stored {} sketches in {:.1} s",
        days * orgs,
        started.elapsed().as_secs_f64()
    );
    let last = format!("2026-10-{days:02}");
    let mut times = [Vec::new(), Vec::new()];
    let mut counts = [0, 0];
    for _ in 0..5 {
        let t = Instant::now();
        let rows = store
            .union_sketches("2026-10-01", &last, "subscribers")
            .unwrap()
            .expect("the hll extension");
        let mut all = Sketch::default();
        for r in rows {
            all.merge(&Sketch::from_bytes(&r.sketch).unwrap()).unwrap();
        }
        counts[0] = all.count();
        times[0].push(t.elapsed().as_secs_f64());
        let t = Instant::now();
        let mut all = Sketch::default();
        for r in store.sketches("2026-10-01", &last, "subscribers").unwrap() {
            all.merge(&Sketch::from_bytes(&r.sketch).unwrap()).unwrap();
        }
        counts[1] = all.count();
        times[1].push(t.elapsed().as_secs_f64());
    }
    for t in &mut times {
        t.sort_by(f64::total_cmp);
    }
    let expected = u64::from(orgs) * u64::from(per_day / 2 * (days + 1));
    println!(
        "{days} days x {orgs} organisations ({} sketches, {per_day} values a day each; {expected} distinct)",
        days * orgs
    );
    println!(
        "  SQL hll_union_agg + program: median {:.1} ms, count {}",
        times[0][2] * 1000.0,
        counts[0]
    );
    println!(
        "  program merge of every row:  median {:.1} ms, count {}",
        times[1][2] * 1000.0,
        counts[1]
    );
    println!("  ratio (program / SQL): {:.2}", times[1][2] / times[0][2]);
}
