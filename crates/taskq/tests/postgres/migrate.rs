//! Connecting, schemas and migrations.

use super::*;

#[tokio::test]
async fn connect_picks_the_backend_from_the_url() {
    let queue = Queue::connect(&url()).await.unwrap();
    assert!(queue.supports_notify());
    let id = queue.enqueue("url", &1).await.unwrap();
    queue.delete(id).await.unwrap();
}

#[tokio::test]
async fn bad_schemas_and_urls_are_refused_without_leaking_secrets() {
    for schema in ["", "Upper", "x; DROP TABLE y", "1st", "a\"b"] {
        let config = PostgresConfig {
            schema: schema.into(),
            ..PostgresConfig::default()
        };
        let result = PostgresBackend::connect(&url(), config).await;
        assert!(
            matches!(
                result,
                Err(Error::InvalidInput {
                    field: "schema",
                    ..
                })
            ),
            "{schema}"
        );
    }
    let result = PostgresBackend::connect(
        "postgres://user:hunter2@127.0.0.1:port/db",
        PostgresConfig::default(),
    )
    .await;
    let error = result.unwrap_err();
    assert!(
        matches!(error, Error::InvalidInput { field: "url", .. }),
        "{error}"
    );
    assert!(!format!("{error} {error:?}").contains("hunter2"));

    // Nothing listens on port 1.
    let config = PostgresConfig {
        connect_timeout: Duration::from_secs(2),
        ..PostgresConfig::default()
    };
    let result = PostgresBackend::connect("postgres://user:hunter2@127.0.0.1:1/db", config).await;
    let error = result.unwrap_err();
    assert_eq!(
        error.database_kind(),
        Some(DatabaseErrorKind::ConnectionLost),
        "{error}"
    );
    assert!(!format!("{error} {error:?}").contains("hunter2"));
}

#[tokio::test]
async fn a_newer_schema_is_refused() {
    let db = postgres_db().await;
    let queue = db.queue().await;
    let client = raw_client().await;
    client
        .execute(
            &format!("INSERT INTO {}.taskq_migrations (version, name, checksum) VALUES (99, 'future', 0)", db.schema),
            &[],
        )
        .await
        .unwrap();
    let newer = |r: Result<(), Error>| {
        matches!(
            r,
            Err(Error::SchemaTooNew {
                found: 99,
                supported: taskq::postgres::SCHEMA_VERSION
            })
        )
    };
    assert!(newer(queue.migrate().await));
    assert!(newer(
        PostgresBackend::connect(&url(), db.config())
            .await
            .map(drop)
    ));
    let unmigrated = PostgresConfig {
        migrate: false,
        ..db.config()
    };
    assert!(newer(
        PostgresBackend::connect(&url(), unmigrated).await.map(drop)
    ));
}

#[tokio::test]
async fn an_unmigrated_schema_says_so() {
    let db = postgres_db().await;
    let config = PostgresConfig {
        migrate: false,
        ..db.config()
    };
    let backend = PostgresBackend::connect(&url(), config).await.unwrap();
    let queue = Queue::new(backend, QueueConfig::default()).unwrap();
    assert!(matches!(
        queue.enqueue("a", &1).await,
        Err(Error::SchemaTooOld { .. })
    ));
    queue.migrate().await.unwrap();
    queue.enqueue("a", &1).await.unwrap();
}

/// A schema one migration behind this build, opened without migrating:
/// operations refuse with `SchemaTooOld`, naming both versions, instead of
/// failing on what the missing migration adds, and work once the schema
/// is migrated (here by another process, which the test stands in for by
/// putting the migration's row back).
#[tokio::test]
async fn an_older_schema_is_refused_until_migrated() {
    let db = postgres_db().await;
    db.queue().await;
    let client = raw_client().await;
    let latest = postgres::SCHEMA_VERSION;
    let migrations = format!("{}.taskq_migrations", db.schema);
    let row = client
        .query_one(
            &format!("DELETE FROM {migrations} WHERE version = $1 RETURNING name, checksum"),
            &[&latest],
        )
        .await
        .unwrap();
    let config = PostgresConfig {
        migrate: false,
        ..db.config()
    };
    let backend = PostgresBackend::connect(&url(), config).await.unwrap();
    let queue = Queue::new(backend, QueueConfig::default()).unwrap();
    match queue.enqueue("a", &1).await {
        Err(Error::SchemaTooOld { found, needed }) => {
            assert_eq!((found, needed), (latest - 1, latest));
        }
        other => panic!("expected SchemaTooOld, got {other:?}"),
    }
    assert!(matches!(
        queue.stats().await,
        Err(Error::SchemaTooOld { .. })
    ));
    client
        .execute(
            &format!("INSERT INTO {migrations} (version, name, checksum) VALUES ($1, $2, $3)"),
            &[&latest, &row.get::<_, String>(0), &row.get::<_, i64>(1)],
        )
        .await
        .unwrap();
    queue.enqueue("a", &1).await.unwrap();
    assert_eq!(queue.len("a").await.unwrap(), 1);
}

#[tokio::test]
async fn concurrent_migrations_apply_once() {
    let db = postgres_db().await;
    let config = db.config();
    let connects = (0..6).map(|_| {
        let config = config.clone();
        tokio::spawn(async move { PostgresBackend::connect(&url(), config).await.map(drop) })
    });
    for connect in connects.collect::<Vec<_>>() {
        connect.await.unwrap().unwrap();
    }
    let client = raw_client().await;
    let row = client
        .query_one(
            &format!("SELECT count(*) FROM {}.taskq_migrations", db.schema),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, i64>(0), postgres::SCHEMA_VERSION);
}
