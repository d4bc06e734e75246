//! Exact splitting of an amount in minor units.
//!
//! The rule (also in the README): each part first gets the whole minor units of its exact
//! quota `total × weight / Σweights`; the minor units left over go one at a time to the parts
//! with the largest fractional remainders, ties to the earlier part (the caller fixes the order,
//! e.g. passengers by id). The parts always sum to the total, and the same input always gives
//! the same split.

/// Why a split is impossible.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SplitError {
    #[error("nothing to split among: no parts")]
    NoParts,
    #[error("every weight is zero")]
    ZeroWeights,
    #[error("a negative amount cannot be split")]
    Negative,
}

/// Splits `total_minor` in proportion to `weights` by the largest-remainder rule.
pub fn split_weighted(total_minor: i64, weights: &[u64]) -> Result<Vec<i64>, SplitError> {
    if weights.is_empty() {
        return Err(SplitError::NoParts);
    }
    if total_minor < 0 {
        return Err(SplitError::Negative);
    }
    let weight_sum: u128 = weights.iter().map(|w| u128::from(*w)).sum();
    if weight_sum == 0 {
        return Err(SplitError::ZeroWeights);
    }
    let total = total_minor as u128;
    let mut parts: Vec<i64> = Vec::with_capacity(weights.len());
    let mut remainders: Vec<(u128, usize)> = Vec::with_capacity(weights.len());
    for (index, weight) in weights.iter().enumerate() {
        let exact = total * u128::from(*weight);
        parts.push((exact / weight_sum) as i64);
        remainders.push((exact % weight_sum, index));
    }
    let handed_out: i64 = parts.iter().sum();
    let left = (total_minor - handed_out) as usize;
    // Largest remainder first; equal remainders keep their order (stable sort).
    remainders.sort_by_key(|&(remainder, _)| std::cmp::Reverse(remainder));
    for &(_, index) in remainders.iter().take(left) {
        parts[index] += 1;
    }
    Ok(parts)
}

/// Splits `total_minor` evenly among `parts` parts; the first ones get the extra minor units.
pub fn split_even(total_minor: i64, parts: usize) -> Result<Vec<i64>, SplitError> {
    split_weighted(total_minor, &vec![1; parts])
}

/// `amount_minor × basis_points / 10 000`, rounded half to even: the platform's fee on an amount
/// (1 500 basis points = 15 %). The driver gets `amount - fee`, so the two always add up.
pub fn fee_minor(amount_minor: i64, basis_points: u32) -> i64 {
    // |amount × bps / 10 000| ≤ |amount|, so the result fits.
    round_half_even_div(i128::from(amount_minor) * i128::from(basis_points), 10_000) as i64
}

/// `numerator / denominator` rounded half to even (banker's rounding); `denominator > 0`.
pub fn round_half_even_div(numerator: i128, denominator: i128) -> i128 {
    let (quotient, remainder) = (numerator.div_euclid(denominator), numerator.rem_euclid(denominator));
    match (2 * remainder).cmp(&denominator) {
        std::cmp::Ordering::Less => quotient,
        std::cmp::Ordering::Greater => quotient + 1,
        std::cmp::Ordering::Equal => quotient + (quotient & 1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn even_splits_give_the_extra_cents_to_the_first_parts() {
        assert_eq!(split_even(1000, 3).unwrap(), vec![334, 333, 333]);
        assert_eq!(split_even(1001, 3).unwrap(), vec![334, 334, 333]);
        assert_eq!(split_even(2, 3).unwrap(), vec![1, 1, 0]);
        assert_eq!(split_even(0, 2).unwrap(), vec![0, 0]);
    }

    #[test]
    fn weighted_splits_follow_the_largest_remainder() {
        // Quotas 100 × (1, 2, 3) / 6 = 16.67, 33.33, 50 → 16, 33, 50 and one cent to the 0.67.
        assert_eq!(split_weighted(100, &[1, 2, 3]).unwrap(), vec![17, 33, 50]);
        assert_eq!(split_weighted(10, &[0, 1]).unwrap(), vec![0, 10]);
    }

    #[test]
    fn impossible_splits_are_errors() {
        assert_eq!(split_even(100, 0), Err(SplitError::NoParts));
        assert_eq!(split_weighted(100, &[0, 0]), Err(SplitError::ZeroWeights));
        assert_eq!(split_even(-1, 2), Err(SplitError::Negative));
    }

    #[test]
    fn fees_round_half_to_even() {
        assert_eq!(fee_minor(1000, 1500), 150);
        assert_eq!(fee_minor(1, 5000), 0, "0.5 rounds to 0");
        assert_eq!(fee_minor(3, 5000), 2, "1.5 rounds to 2");
        assert_eq!(fee_minor(999, 0), 0);
        assert_eq!(fee_minor(999, 10_000), 999);
    }

    proptest! {
        #[test]
        fn parts_sum_to_the_total_and_stay_within_one_unit_of_the_quota(
            total in 0i64..10_000_000_000,
            weights in prop::collection::vec(0u64..1_000, 1..40),
        ) {
            prop_assume!(weights.iter().any(|w| *w > 0));
            let parts = split_weighted(total, &weights).unwrap();
            prop_assert_eq!(parts.iter().sum::<i64>(), total);
            let weight_sum: u128 = weights.iter().map(|w| u128::from(*w)).sum();
            for (part, weight) in parts.iter().zip(&weights) {
                let floor = (total as u128 * u128::from(*weight) / weight_sum) as i64;
                prop_assert!(*part == floor || *part == floor + 1);
            }
            prop_assert_eq!(split_weighted(total, &weights).unwrap(), parts, "deterministic");
        }

        #[test]
        fn even_parts_differ_by_at_most_one_unit(total in 0i64..1_000_000_000, n in 1usize..50) {
            let parts = split_even(total, n).unwrap();
            prop_assert_eq!(parts.iter().sum::<i64>(), total);
            prop_assert!(parts.iter().max().unwrap() - parts.iter().min().unwrap() <= 1);
            prop_assert!(parts.windows(2).all(|w| w[0] >= w[1]), "extra units go first");
        }

        #[test]
        fn fee_and_payout_add_up(amount in 0i64..10_000_000_000, bps in 0u32..=10_000) {
            let fee = fee_minor(amount, bps);
            let payout = amount - fee;
            prop_assert_eq!(fee + payout, amount);
            prop_assert!(fee >= 0 && payout >= 0);
            let error = (i128::from(fee) * 10_000 - i128::from(amount) * i128::from(bps)).abs();
            prop_assert!(error <= 5_000, "within half a minor unit of the exact fee");
        }
    }
}
