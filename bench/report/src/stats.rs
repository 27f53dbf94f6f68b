//! Medians and spreads over repeated runs, and how a ratio is oriented.
//!
//! Every figure in the report is the median of its runs, shown with the min–max spread; every
//! ratio is taken between medians and oriented so that > 1 means strata is better.

/// The median and the min–max spread of the runs of one row.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spread {
    pub median: f64,
    pub min: f64,
    pub max: f64,
    pub runs: usize,
}

impl Spread {
    /// The spread of `values`, or `None` when there are none. With an even count the median is
    /// the mean of the two middle values.
    pub fn of(values: impl IntoIterator<Item = f64>) -> Option<Spread> {
        let mut v: Vec<f64> = values.into_iter().collect();
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let median = if n % 2 == 1 {
            v[n / 2]
        } else {
            f64::midpoint(v[n / 2 - 1], v[n / 2])
        };
        Some(Spread {
            median,
            min: v[0],
            max: v[n - 1],
            runs: n,
        })
    }

    /// A figure measured once.
    pub fn single(x: f64) -> Spread {
        Spread {
            median: x,
            min: x,
            max: x,
            runs: 1,
        }
    }
}

/// Which direction of a metric is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Better {
    /// Throughput: the ratio is strata / peer.
    Higher,
    /// Costs and latencies: the ratio is peer / strata.
    Lower,
}

impl Better {
    /// How many times better strata is than the peer: > 1 strata wins, < 1 strata loses.
    pub fn advantage(self, strata: f64, peer: f64) -> f64 {
        match self {
            Better::Higher => strata / peer,
            Better::Lower => peer / strata,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        let s = Spread::of([3.0, 1.0, 2.0]).unwrap();
        assert_eq!((s.median, s.min, s.max, s.runs), (2.0, 1.0, 3.0, 3));
        let s = Spread::of([4.0, 1.0, 3.0, 2.0]).unwrap();
        assert_eq!((s.median, s.min, s.max, s.runs), (2.5, 1.0, 4.0, 4));
        assert_eq!(Spread::of([]), None);
    }

    #[test]
    fn advantage_above_one_means_strata_is_better() {
        assert_eq!(Better::Higher.advantage(2.0, 1.0), 2.0);
        assert_eq!(Better::Lower.advantage(1.0, 2.0), 2.0);
        assert!(Better::Lower.advantage(2.0, 1.0) < 1.0);
    }
}
