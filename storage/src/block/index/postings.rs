//! Set operations on sorted, duplicate-free lists of series refs, for evaluating matchers on a
//! block index.

use super::SeriesRef;

/// The union of pairwise-disjoint sorted lists (the lists of one label's values), sorted.
pub(super) fn union_disjoint(mut lists: Vec<Vec<SeriesRef>>) -> Vec<SeriesRef> {
    match lists.len() {
        0 => Vec::new(),
        1 => lists.pop().unwrap_or_default(),
        _ => {
            let mut out = Vec::with_capacity(lists.iter().map(Vec::len).sum());
            let mut sorted = true;
            for l in &lists {
                if let (Some(&last), Some(&first)) = (out.last(), l.first()) {
                    sorted &= last < first;
                }
                out.extend_from_slice(l);
            }
            if !sorted {
                out.sort_unstable();
                // Disjoint in a valid index; a corrupt one must not yield duplicates.
                out.dedup();
            }
            out
        }
    }
}

/// The elements of sorted `a` that are also in sorted `b`.
pub(super) fn intersect(a: &[SeriesRef], b: &[SeriesRef]) -> Vec<SeriesRef> {
    let (small, large) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    let mut out = Vec::with_capacity(small.len());
    let mut rest = large;
    for &x in small {
        rest = skip_below(rest, x);
        match rest.first() {
            None => break,
            Some(&y) if y == x => {
                out.push(x);
                rest = &rest[1..];
            }
            Some(_) => {}
        }
    }
    out
}

/// The elements of sorted `a` that are not in sorted `b`.
pub(super) fn subtract(a: &[SeriesRef], b: &[SeriesRef]) -> Vec<SeriesRef> {
    let mut out = Vec::with_capacity(a.len());
    let mut rest = b;
    for (i, &x) in a.iter().enumerate() {
        rest = skip_below(rest, x);
        if rest.is_empty() {
            out.extend_from_slice(&a[i..]);
            break;
        }
        if rest[0] != x {
            out.push(x);
        }
    }
    out
}

/// The suffix of sorted `l` from its first element `>= x`, found by galloping (cheap when the
/// answer is near the front, logarithmic otherwise).
fn skip_below(l: &[SeriesRef], x: SeriesRef) -> &[SeriesRef] {
    let mut step = 1;
    let mut lo = 0;
    while lo + step < l.len() && l[lo + step] < x {
        lo += step;
        step *= 2;
    }
    let hi = (lo + step + 1).min(l.len());
    let i = lo + l[lo..hi].partition_point(|&y| y < x);
    &l[i..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_operations() {
        let a = [1, 3, 5, 7, 9, 11];
        let b = [2, 3, 4, 9, 10, 11, 12];
        assert_eq!(intersect(&a, &b), vec![3, 9, 11]);
        assert_eq!(intersect(&b, &a), vec![3, 9, 11]);
        assert_eq!(subtract(&a, &b), vec![1, 5, 7]);
        assert_eq!(subtract(&b, &a), vec![2, 4, 10, 12]);
        assert_eq!(subtract(&a, &[]), a.to_vec());
        assert!(intersect(&a, &[]).is_empty());
        assert_eq!(
            union_disjoint(vec![vec![5, 6], vec![1, 9], vec![2]]),
            vec![1, 2, 5, 6, 9]
        );
        assert_eq!(union_disjoint(vec![vec![1], vec![2, 3]]), vec![1, 2, 3]);
        assert_eq!(union_disjoint(vec![vec![1, 2], vec![2]]), vec![1, 2]);
        assert_eq!(skip_below(&[1, 2, 3, 4, 5, 6, 7, 8, 9], 8), &[8, 9]);
        assert!(skip_below(&[1, 2], 3).is_empty());
    }
}
