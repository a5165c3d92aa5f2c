//! What the migrations of every backend share: numbering and checksums.

/// One numbered schema change. Released migrations are never edited; the
/// same number exists for every backend, even where one is a no-op.
pub(crate) struct Migration {
    pub(crate) version: i64,
    pub(crate) name: &'static str,
    pub(crate) sql: &'static str,
}

/// The migrations still to apply, given the `(version, checksum)` pairs
/// already applied: refuses a schema newer than `migrations` knows and an
/// applied migration whose text was changed.
pub(crate) fn pending<'a>(
    migrations: &'a [Migration],
    applied: &[(i64, i64)],
) -> crate::error::Result<Vec<&'a Migration>> {
    let latest = migrations.last().map_or(0, |m| m.version);
    if let Some(found) = applied.iter().map(|(version, _)| *version).max() {
        if found > latest {
            return Err(crate::error::Error::SchemaTooNew {
                found,
                supported: latest,
            });
        }
    }
    let mut todo = Vec::new();
    for migration in migrations {
        match applied
            .iter()
            .find(|(version, _)| *version == migration.version)
        {
            Some(&(_, sum)) if sum != checksum(migration.sql) => {
                return Err(crate::error::Error::MigrationMismatch {
                    version: migration.version,
                });
            }
            Some(_) => {}
            None => todo.push(migration),
        }
    }
    Ok(todo)
}

/// Checks, in each backend's tests, that its migrations are numbered 1, 2,
/// 3, … and that the newest is the version the backend reports.
#[cfg(test)]
pub(crate) fn assert_numbered(migrations: &[Migration], latest: i64) {
    for (i, migration) in migrations.iter().enumerate() {
        assert_eq!(migration.version, i as i64 + 1, "{}", migration.name);
    }
    assert_eq!(migrations.last().map(|m| m.version), Some(latest));
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
    fn pending_lists_what_is_missing_and_refuses_newer_or_edited_schemas() {
        let migrations = [
            Migration {
                version: 1,
                name: "a",
                sql: "CREATE TABLE a (x)",
            },
            Migration {
                version: 2,
                name: "b",
                sql: "CREATE TABLE b (x)",
            },
        ];
        let one = [(1, checksum("CREATE TABLE a (x)"))];
        let todo = pending(&migrations, &one).unwrap();
        assert_eq!(todo.iter().map(|m| m.version).collect::<Vec<_>>(), [2]);
        assert_eq!(pending(&migrations, &[]).unwrap().len(), 2);
        assert!(matches!(
            pending(&migrations, &[(3, 0)]),
            Err(crate::error::Error::SchemaTooNew {
                found: 3,
                supported: 2
            })
        ));
        assert!(matches!(
            pending(&migrations, &[(1, 42)]),
            Err(crate::error::Error::MigrationMismatch { version: 1 })
        ));
    }

    #[test]
    fn checksum_notices_edits() {
        assert_eq!(checksum("a"), checksum("a"));
        assert_ne!(checksum("CREATE TABLE a"), checksum("CREATE TABLE b"));
    }
}
