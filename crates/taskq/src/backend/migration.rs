//! What the migrations of every backend share: numbering and checksums.

/// One numbered schema change. Released migrations are never edited; the
/// same number exists for every backend, even where one is a no-op.
pub(crate) struct Migration {
    pub(crate) version: i64,
    pub(crate) name: &'static str,
    pub(crate) sql: &'static str,
}

/// FNV-1a of a migration's text: a stable fingerprint, stored when the
/// migration is applied, that notices later edits.
pub(crate) fn checksum(sql: &str) -> i64 {
    let hash = sql.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    });
    hash as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_notices_edits() {
        assert_eq!(checksum("a"), checksum("a"));
        assert_ne!(checksum("CREATE TABLE a"), checksum("CREATE TABLE b"));
    }
}
