//! A worker's share of a run spread over several processes or machines (`--segment I/N`: k6's
//! execution segments, in equal shares). Worker I of N takes every N-th VU and every N-th
//! iteration, counted from its own index: VU or iteration `n` of the whole run belongs to worker
//! `n % N + 1`. So the N shares add up exactly to the whole, also when N does not divide it (the
//! first workers then take one more), the shares interleave in time (each worker offers 1/N of
//! the rate all along, not a block of the run), and every VU keeps its run-wide number: request
//! ids `<run>-<vu>-<iteration>` stay unique across workers.

use std::fmt;

/// Most workers one run is split into.
pub const MAX_WORKERS: u64 = 10_000;

/// Worker `index + 1` of `count`; as data, `"I/N"`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(try_from = "String", into = "String")]
pub struct Segment {
    index: u64,
    count: u64,
}

impl Default for Segment {
    fn default() -> Self {
        Segment::WHOLE
    }
}

impl Segment {
    /// The whole run, in one process.
    pub const WHOLE: Segment = Segment { index: 0, count: 1 };

    /// Worker `number` (1-based) of `count`.
    pub fn new(number: u64, count: u64) -> Result<Segment, String> {
        if !(1..=MAX_WORKERS).contains(&count) {
            return Err(format!(
                "a run splits into 1 to {MAX_WORKERS} segments, not {count}"
            ));
        }
        if !(1..=count).contains(&number) {
            return Err(format!("segment {number}/{count}: I must be 1 to {count}"));
        }
        Ok(Segment {
            index: number - 1,
            count,
        })
    }

    /// Reads `I/N` (worker I of N, 1-based), or k6's `FROM:TO` for an equal share
    /// (`1/4:2/4` is `2/4`).
    pub fn parse(text: &str) -> Result<Segment, String> {
        let bad = || format!("{text:?} is not a segment: expected I/N, e.g. 2/4 (worker 2 of 4)");
        let number = |part: &str| part.trim().parse::<u64>().map_err(|_| bad());
        let fraction = |part: &str| -> Result<(u64, u64), String> {
            match part.split_once('/') {
                Some((i, n)) => Ok((number(i)?, number(n)?)),
                None if part.trim() == "0" => Ok((0, 1)),
                None if part.trim() == "1" => Ok((1, 1)),
                None => Err(bad()),
            }
        };
        match text.split_once(':') {
            None => {
                let (i, n) = fraction(text)?;
                Segment::new(i, n)
            }
            Some((from, to)) => {
                let ((a, n), (b, m)) = (fraction(from)?, fraction(to)?);
                // An equal share: from (I-1)/N to I/N, denominators alike (0 and 1 take the other's).
                let count = n.max(m);
                let scale = |x: u64, d: u64| (count % d == 0).then(|| x * (count / d));
                match (scale(a, n), scale(b, m)) {
                    (Some(from), Some(to)) if to == from + 1 => Segment::new(to, count),
                    _ => Err(format!(
                        "{text:?}: only equal shares are supported, (I-1)/N:I/N, e.g. 1/4:2/4"
                    )),
                }
            }
        }
    }

    /// Whether this is the whole run.
    pub fn is_whole(&self) -> bool {
        self.count == 1
    }

    /// How many workers share the run.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// How many of the run's `total` VUs or iterations are this worker's.
    pub fn share(&self, total: u64) -> u64 {
        if total > self.index {
            (total - self.index - 1) / self.count + 1
        } else {
            0
        }
    }

    /// Whether the run's VU or iteration `n` (0-based) is this worker's.
    pub fn owns(&self, n: u64) -> bool {
        n % self.count == self.index
    }

    /// The run-wide number of this worker's `local`-th VU or iteration (0-based).
    pub fn global(&self, local: u64) -> u64 {
        local * self.count + self.index
    }
}

impl TryFrom<String> for Segment {
    type Error = String;
    fn try_from(text: String) -> Result<Segment, String> {
        Segment::parse(&text)
    }
}

impl From<Segment> for String {
    fn from(segment: Segment) -> String {
        segment.to_string()
    }
}

impl fmt::Display for Segment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index + 1, self.count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shares_add_up_to_the_whole_and_interleave() {
        for count in 1..=7u64 {
            for total in 0..=50u64 {
                let segments: Vec<Segment> = (1..=count)
                    .map(|i| Segment::new(i, count).unwrap())
                    .collect();
                let shares: u64 = segments.iter().map(|s| s.share(total)).sum();
                assert_eq!(shares, total, "{total} over {count}");
                for n in 0..total {
                    let owners: Vec<&Segment> = segments.iter().filter(|s| s.owns(n)).collect();
                    assert_eq!(owners.len(), 1, "{n} of {total} over {count}");
                }
                for s in &segments {
                    let mine: Vec<u64> = (0..s.share(total)).map(|k| s.global(k)).collect();
                    assert!(
                        mine.iter().all(|n| *n < total && s.owns(*n)),
                        "{s}: {mine:?}"
                    );
                    // The shares differ by at most one.
                    assert!(s.share(total) * count + count > total);
                }
            }
        }
    }

    #[test]
    fn reads_i_over_n_and_k6s_spelling() {
        assert_eq!(Segment::parse("2/4").unwrap(), Segment::new(2, 4).unwrap());
        assert_eq!(Segment::parse("2/4").unwrap().to_string(), "2/4");
        assert_eq!(Segment::parse("1/4:2/4").unwrap().to_string(), "2/4");
        assert_eq!(Segment::parse("0:1/3").unwrap().to_string(), "1/3");
        assert_eq!(Segment::parse("2/3:1").unwrap().to_string(), "3/3");
        assert_eq!(Segment::parse("1/1").unwrap(), Segment::WHOLE);
        for bad in ["0/4", "5/4", "x", "1/0", "1/4:3/4", "0:1/2:1", "1/20000"] {
            assert!(Segment::parse(bad).is_err(), "{bad}");
        }
    }
}
