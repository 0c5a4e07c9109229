//! Key layouts of the experiment sets in the `metrics` column family
//! (docs/metrics.md, "Experiments"): the [`MetricKey`] variants
//! `VariantUsers`, `ExposedOn`, `Contaminated` and `Converted`.
//!
//! Experiment and variant names are written as `len ‖ bytes`, so that
//! experiment `a` is never a range prefix of experiment `ab`. Every layout
//! starts with the experiment after its tag, so a set's chunks are one
//! prefix; variant sets have their own tag so that listing experiments reads
//! only them.

use super::day_from_asc;
use super::metrics::{MetricKey, CONTAMINATED, CONVERTED, EXPOSED_ON, USER_SET, VARIANT_USERS};

/// Splits `len ‖ name` off the front of `b`.
fn take_name(b: &[u8]) -> Option<(String, &[u8])> {
    let (&len, rest) = b.split_first()?;
    let len = usize::from(len);
    let name = std::str::from_utf8(rest.get(..len)?).ok()?.to_owned();
    Some((name, &rest[len..]))
}

/// The experiment layouts after their tag.
pub(super) fn parse(tag: u8, body: &[u8]) -> Option<MetricKey> {
    let be16 = |b: &[u8]| -> Option<u16> { Some(u16::from_be_bytes(b.try_into().ok()?)) };
    let (experiment, rest) = take_name(body)?;
    match tag {
        VARIANT_USERS | EXPOSED_ON => {
            let (variant, rest) = take_name(rest)?;
            match (tag, rest.len()) {
                (VARIANT_USERS, 2) => Some(MetricKey::VariantUsers {
                    experiment,
                    variant,
                    chunk: be16(rest)?,
                }),
                (EXPOSED_ON, 6) => Some(MetricKey::ExposedOn {
                    experiment,
                    variant,
                    day: day_from_asc(rest[..4].try_into().ok()?),
                    chunk: be16(&rest[4..])?,
                }),
                _ => None,
            }
        }
        CONTAMINATED if rest.len() == 2 => Some(MetricKey::Contaminated {
            experiment,
            chunk: be16(rest)?,
        }),
        CONVERTED if rest.len() == 8 => Some(MetricKey::Converted {
            experiment,
            kind: u32::from_be_bytes(rest[..4].try_into().ok()?),
            bucket: be16(&rest[4..6])?,
            chunk: be16(&rest[6..])?,
        }),
        _ => None,
    }
}

/// `USER_SET tag len name`. Names are validated to fit a length byte
/// (experiments and variants: ≤ 64 bytes).
fn named(tag: u8, name: &str) -> Vec<u8> {
    debug_assert!(name.len() <= usize::from(u8::MAX), "names are validated");
    let mut k = Vec::with_capacity(3 + name.len() + 72);
    k.extend_from_slice(&[USER_SET, tag, name.len() as u8]);
    k.extend_from_slice(name.as_bytes());
    k
}

/// The start of every chunk of the users assigned `variant` in `experiment`.
pub fn variant_prefix(experiment: &str, variant: &str) -> Vec<u8> {
    let mut k = named(VARIANT_USERS, experiment);
    k.push(variant.len() as u8);
    k.extend_from_slice(variant.as_bytes());
    k
}

/// The start of every variant set of `experiment`.
pub fn variants_prefix(experiment: &str) -> Vec<u8> {
    named(VARIANT_USERS, experiment)
}

/// The start of every variant set of every experiment.
pub const VARIANT_USERS_PREFIX: [u8; 2] = [USER_SET, VARIANT_USERS];

/// The start of every per-day first-exposure set of `variant`.
pub fn exposed_on_prefix(experiment: &str, variant: &str) -> Vec<u8> {
    let mut k = named(EXPOSED_ON, experiment);
    k.push(variant.len() as u8);
    k.extend_from_slice(variant.as_bytes());
    k
}

/// The start of every chunk of `experiment`'s contaminated users.
pub fn contaminated_prefix(experiment: &str) -> Vec<u8> {
    named(CONTAMINATED, experiment)
}

/// The start of every delay bucket of conversions to `kind` in `experiment`.
pub fn converted_prefix(experiment: &str, kind: u32) -> Vec<u8> {
    let mut k = named(CONVERTED, experiment);
    k.extend_from_slice(&kind.to_be_bytes());
    k
}
