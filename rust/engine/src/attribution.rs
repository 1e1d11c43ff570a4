//! Attributed energy (methodology section 10): each metered interval's energy of a node is
//! divided over the requests active on that node in it; a request's `E_acc` is its share.
//!
//! Two passes over the same records, through the same scan: the first ([`ClaimSink`]) sums,
//! per interval, what every request active in it claims (the denominators); the second is the
//! kernel's ordinary run, where [`Methodology::contribution`](crate::kernel) asks
//! [`Attribution::share_wh`] for a request's share. Both passes compute a request's claims with
//! the one function [`Attribution::claims`], so the shares of an interval add up to its energy.
//!
//! A request is active over `[ts - duration_s, ts]`; one without a duration (or with 0) is a
//! point at `ts`, active in the intervals `(start, end]` that contain it. In an interval:
//! - GPU-seconds: `overlap_s * gpus * weight`, used when every request active in the interval
//!   has a duration (and their GPU-seconds are not all zero);
//! - else output tokens, `output_tokens * weight` times the fraction of the request's span in
//!   the interval (a point request: all of it), when they are not all zero;
//! - else the requests' weights (times the same fraction), so energy with requests present is
//!   never left unassigned.
//!
//! An interval no request claims is the node's idle energy, reported per node and hour (of the
//! interval's end); never dropped. Sum of attributed and idle energy equals the metered energy
//! up to floating-point rounding of the shares (a relative 1e-12 at most in practice; tested).

use std::sync::Arc;

use crate::counters::{Interval, NodeEnergy};
use crate::error::Result;
use crate::kernel::Methodology;
use crate::record::{Loc, Record, RecordSink};
use crate::time::{hour_of, US_PER_HOUR};
use arrow_array::{ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray};
use arrow_schema::{DataType, Field, Schema, TimeUnit};

/// What one request brings to the intervals it is active in (per request: weight 1).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Claim {
    pub ts_us: i64,
    pub duration_s: Option<f64>,
    /// Accelerators of the request's replica, resolved as the kernel does (record, site, 1).
    pub gpus: f64,
    pub output_tokens: f64,
    pub weight: f64,
}

/// Per interval: the sums of the claims active in it.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Denom {
    pub gpu_seconds: f64,
    pub tokens: f64,
    pub weight: f64,
    /// Weight of the requests active in it without a duration: their GPU-seconds are unknown,
    /// so the interval is shared by tokens.
    pub no_duration: f64,
}

/// The basis an interval is shared by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Basis {
    GpuSeconds,
    Tokens,
    Weight,
    Idle,
}

impl Denom {
    pub fn basis(&self) -> Basis {
        if self.no_duration == 0.0 && self.gpu_seconds > 0.0 {
            Basis::GpuSeconds
        } else if self.tokens > 0.0 {
            Basis::Tokens
        } else if self.weight > 0.0 {
            Basis::Weight
        } else {
            Basis::Idle
        }
    }

    fn add(&mut self, o: &Denom) {
        self.gpu_seconds += o.gpu_seconds;
        self.tokens += o.tokens;
        self.weight += o.weight;
        self.no_duration += o.no_duration;
    }

    /// This claim's part of the interval (same units as the sums), under `basis`.
    fn part(&self, basis: Basis) -> f64 {
        match basis {
            Basis::GpuSeconds => self.gpu_seconds,
            Basis::Tokens => self.tokens,
            Basis::Weight => self.weight,
            Basis::Idle => 0.0,
        }
    }
}

/// Metered node energy and, after the first pass, the per-interval denominators.
#[derive(Debug)]
pub struct Attribution {
    pub energy: Arc<NodeEnergy>,
    denoms: Vec<Vec<Denom>>,
}

/// Per node and hour (of the interval's end): metered, attributed and idle energy.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeHour {
    pub node: Arc<str>,
    pub hour: i64,
    pub metered_j: f64,
    pub attributed_j: f64,
    pub idle_j: f64,
    pub intervals: u64,
    pub idle_intervals: u64,
}

impl Attribution {
    /// Denominators all zero: what the first pass starts from.
    pub fn empty_denoms(energy: &NodeEnergy) -> Vec<Vec<Denom>> {
        energy.intervals.iter().map(|v| vec![Denom::default(); v.len()]).collect()
    }

    pub fn new(energy: Arc<NodeEnergy>, denoms: Vec<Vec<Denom>>) -> Attribution {
        Attribution { energy, denoms }
    }

    /// The claims of one request on `node`: `(interval index, claim)` for every interval it is
    /// active in (with weight applied). Empty: the request is not covered by the node's meter.
    pub fn claims(energy: &NodeEnergy, node: u32, c: &Claim, mut each: impl FnMut(usize, Denom)) {
        let Some(ivs) = energy.intervals.get(node as usize) else { return };
        let longest = energy.longest_us[node as usize];
        let d_us = c.duration_s.map_or(0, |d| (d * 1e6).round() as i64);
        let (s, e) = (c.ts_us.saturating_sub(d_us), c.ts_us);
        // Intervals are sorted by start; one that overlaps [s, e] starts after s - longest.
        let from = ivs.partition_point(|iv| iv.start_us < s.saturating_sub(longest));
        for (k, iv) in ivs.iter().enumerate().skip(from) {
            if iv.start_us >= e {
                break;
            }
            if d_us > 0 {
                let overlap = e.min(iv.end_us) - s.max(iv.start_us);
                if overlap <= 0 {
                    continue;
                }
                let frac = overlap as f64 / d_us as f64;
                each(
                    k,
                    Denom {
                        gpu_seconds: overlap as f64 / 1e6 * c.gpus * c.weight,
                        tokens: c.output_tokens * c.weight * frac,
                        weight: c.weight * frac,
                        no_duration: 0.0,
                    },
                );
            } else if iv.start_us < e && e <= iv.end_us {
                each(
                    k,
                    Denom {
                        gpu_seconds: 0.0,
                        tokens: c.output_tokens * c.weight,
                        weight: c.weight,
                        no_duration: c.weight,
                    },
                );
            }
        }
    }

    /// A request's share (Wh per request, i.e. for weight 1) of the intervals it is active in
    /// on `node`; `None` when it is active in none (not covered: the next method applies).
    pub fn share_wh(&self, node: u32, c: &Claim) -> Option<f64> {
        let per_request = Claim { weight: 1.0, ..*c };
        let ivs = &self.energy.intervals[node as usize];
        let denoms = &self.denoms[node as usize];
        let mut covered = false;
        let mut joules = 0.0;
        Self::claims(&self.energy, node, &per_request, |k, mine| {
            covered = true;
            let total = &denoms[k];
            let basis = total.basis();
            let (part, sum) = (mine.part(basis), total.part(basis));
            if sum > 0.0 && part > 0.0 {
                joules += ivs[k].joules * (part / sum);
            }
        });
        covered.then_some(joules / 3600.0)
    }

    /// Per node and hour: metered, attributed and idle energy (see the module docs).
    pub fn node_hours(&self) -> Vec<NodeHour> {
        let mut out: Vec<NodeHour> = Vec::new();
        for (n, ivs) in self.energy.intervals.iter().enumerate() {
            let node = &self.energy.nodes[n];
            let mut rows: std::collections::BTreeMap<i64, NodeHour> = std::collections::BTreeMap::new();
            for (iv, d) in ivs.iter().zip(&self.denoms[n]) {
                let hour = hour_of(iv.end_us);
                let r = rows.entry(hour).or_insert_with(|| NodeHour {
                    node: node.clone(),
                    hour,
                    metered_j: 0.0,
                    attributed_j: 0.0,
                    idle_j: 0.0,
                    intervals: 0,
                    idle_intervals: 0,
                });
                r.metered_j += iv.joules;
                r.intervals += 1;
                if d.basis() == Basis::Idle {
                    r.idle_j += iv.joules;
                    r.idle_intervals += 1;
                } else {
                    r.attributed_j += iv.joules;
                }
            }
            out.extend(rows.into_values());
        }
        out
    }

    /// [`Self::node_hours`] as one Arrow batch (the ledger's `wl_node_energy` rows, without
    /// the run id): `node`, `hour` (timestamp us UTC), `metered_kwh`, `attributed_kwh`,
    /// `idle_kwh`, `intervals`, `idle_intervals`.
    pub fn node_hours_batch(&self) -> Result<RecordBatch> {
        let rows = self.node_hours();
        let kwh = |f: fn(&NodeHour) -> f64| -> ArrayRef {
            Arc::new(Float64Array::from_iter_values(rows.iter().map(|r| f(r) / 3.6e6)))
        };
        let schema = Arc::new(Schema::new(vec![
            Field::new("node", DataType::Utf8, false),
            Field::new("hour", DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())), false),
            Field::new("metered_kwh", DataType::Float64, false),
            Field::new("attributed_kwh", DataType::Float64, false),
            Field::new("idle_kwh", DataType::Float64, false),
            Field::new("intervals", DataType::Int64, false),
            Field::new("idle_intervals", DataType::Int64, false),
        ]));
        let cols: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.node.as_ref()))),
            Arc::new(
                TimestampMicrosecondArray::from_iter_values(rows.iter().map(|r| r.hour * US_PER_HOUR))
                    .with_timezone("UTC"),
            ),
            kwh(|r| r.metered_j),
            kwh(|r| r.attributed_j),
            kwh(|r| r.idle_j),
            Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.intervals as i64))),
            Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.idle_intervals as i64))),
        ];
        RecordBatch::try_new(schema, cols).map_err(|e| crate::error::Error::internal("node energy rows", e))
    }

    /// The intervals of a node with the basis each was shared by (for tests and reports).
    pub fn bases(&self, node: u32) -> Vec<(Interval, Basis)> {
        let n = node as usize;
        self.energy.intervals[n].iter().zip(&self.denoms[n]).map(|(iv, d)| (*iv, d.basis())).collect()
    }
}

/// The first pass: sums every record's claims into per-interval denominators (one sink per
/// worker, merged by addition).
pub struct ClaimSink<'m> {
    m: &'m Methodology,
    energy: &'m NodeEnergy,
    pub denoms: Vec<Vec<Denom>>,
}

impl<'m> ClaimSink<'m> {
    pub fn new(m: &'m Methodology, energy: &'m NodeEnergy) -> Self {
        ClaimSink { m, energy, denoms: Attribution::empty_denoms(energy) }
    }
}

impl RecordSink for ClaimSink<'_> {
    fn record(&mut self, rec: &Record<'_>, _loc: Loc) {
        let Some((node, claim)) = self.m.attribution_claim(rec, self.energy) else { return };
        let denoms = &mut self.denoms[node as usize];
        Attribution::claims(self.energy, node, &claim, |k, d| denoms[k].add(&d));
    }

    fn merge(&mut self, other: Self) -> Result<()> {
        for (a, b) in self.denoms.iter_mut().zip(other.denoms) {
            for (x, y) in a.iter_mut().zip(b) {
                x.add(&y);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn energy(intervals: Vec<Interval>) -> Arc<NodeEnergy> {
        let mut e = NodeEnergy::default();
        e.longest_us.push(intervals.iter().map(|i| i.end_us - i.start_us).max().unwrap_or(0));
        e.intervals.push(intervals);
        e.nodes.push("n".into());
        e.index.insert("n".into(), 0);
        Arc::new(e)
    }

    const S: i64 = 1_000_000;

    fn claim(ts_s: i64, d: Option<f64>, gpus: f64, tokens: f64, w: f64) -> Claim {
        Claim { ts_us: ts_s * S, duration_s: d, gpus, output_tokens: tokens, weight: w }
    }

    fn attribute(e: &Arc<NodeEnergy>, claims: &[Claim]) -> (Attribution, Vec<Option<f64>>) {
        let mut denoms = Attribution::empty_denoms(e);
        for c in claims {
            Attribution::claims(e, 0, c, |k, d| denoms[0][k].add(&d));
        }
        let a = Attribution::new(e.clone(), denoms);
        let shares = claims.iter().map(|c| a.share_wh(0, c).map(|wh| wh * c.weight * 3600.0)).collect();
        (a, shares)
    }

    #[test]
    fn gpu_seconds_share_and_idle_conserve_energy() {
        let e = energy(vec![
            Interval { start_us: 0, end_us: 60 * S, joules: 600.0 },
            Interval { start_us: 60 * S, end_us: 120 * S, joules: 300.0 },
            Interval { start_us: 120 * S, end_us: 180 * S, joules: 90.0 }, // idle
        ]);
        // A: 30..90 s on 2 GPUs; B: 50..60 s on 1 GPU, weight 3.
        let (a, shares) =
            attribute(&e, &[claim(90, Some(60.0), 2.0, 100.0, 1.0), claim(60, Some(10.0), 1.0, 5.0, 3.0)]);
        // Interval 1: A 30 s * 2 = 60, B 10 * 1 * 3 = 30: A 400 J, B 200 J. Interval 2: A only.
        assert_eq!(shares, vec![Some(400.0 + 300.0), Some(200.0)]);
        let hours = a.node_hours();
        let idle: f64 = hours.iter().map(|h| h.idle_j).sum();
        assert_eq!(idle, 90.0);
        let total: f64 = shares.iter().flatten().sum::<f64>() + idle;
        assert_eq!(total, e.total_joules());
        assert_eq!(
            a.bases(0).iter().map(|b| b.1).collect::<Vec<_>>(),
            [Basis::GpuSeconds, Basis::GpuSeconds, Basis::Idle]
        );
    }

    #[test]
    fn tokens_when_a_request_has_no_duration() {
        let e = energy(vec![Interval { start_us: 0, end_us: 60 * S, joules: 100.0 }]);
        // Point request (no duration) with 30 tokens; span request 60 s with 10 tokens.
        let (a, shares) = attribute(&e, &[claim(10, None, 1.0, 30.0, 1.0), claim(60, Some(60.0), 8.0, 10.0, 1.0)]);
        assert_eq!(a.bases(0)[0].1, Basis::Tokens);
        assert_eq!(shares, vec![Some(75.0), Some(25.0)]);
    }

    #[test]
    fn weight_when_nothing_else_and_uncovered_is_none() {
        let e = energy(vec![Interval { start_us: 0, end_us: 60 * S, joules: 90.0 }]);
        let (_, shares) = attribute(&e, &[claim(10, None, 1.0, 0.0, 1.0), claim(20, Some(0.0), 1.0, 0.0, 2.0)]);
        assert_eq!(shares, vec![Some(30.0), Some(60.0)]);
        // At the interval's start (exclusive) and after its end: not covered.
        let (_, shares) = attribute(&e, &[claim(0, None, 1.0, 1.0, 1.0), claim(61, None, 1.0, 1.0, 1.0)]);
        assert_eq!(shares, vec![None, None]);
    }

    #[test]
    fn conservation_on_random_requests() {
        let mut seed = 12345u64;
        let mut rnd = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % 1_000_000) as f64 / 1_000_000.0
        };
        let mut ivs = Vec::new();
        let mut t = 0;
        for i in 0..200 {
            // Uneven steps, and overlapping per-GPU intervals of another length every 7th.
            let step = if i % 7 == 0 { 45 } else { 15 };
            ivs.push(Interval { start_us: t * S, end_us: (t + step) * S, joules: 1000.0 * rnd() + 1.0 });
            t += 15;
        }
        ivs.sort_by_key(|i| (i.start_us, i.end_us));
        let e = energy(ivs);
        let claims: Vec<Claim> = (0..120)
            .map(|_| {
                let ts = (rnd() * 3200.0) as i64;
                let d = if rnd() < 0.2 { None } else { Some(rnd() * 40.0) };
                claim(ts, d, 1.0 + (rnd() * 8.0).floor(), (rnd() * 500.0).floor(), 0.5 + rnd())
            })
            .collect();
        let (a, shares) = attribute(&e, &claims);
        let attributed: f64 = shares.iter().flatten().sum();
        let idle: f64 = a.node_hours().iter().map(|h| h.idle_j).sum();
        let metered = e.total_joules();
        assert!(idle > 0.0, "some intervals are idle");
        assert!(((attributed + idle) - metered).abs() <= 1e-12 * metered, "{attributed} + {idle} vs {metered}");
    }
}
