//! A write that committed but whose answer never came back: a proxy
//! between the backend and the server cuts the connection once the
//! server has committed, withholding the answer. The repeat on a fresh
//! connection finds the write applied and reports success, and the task
//! does not run again (the killed-backend tests in `lost_connection.rs`
//! cut before the commit instead).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::*;

/// What the proxy cuts: the connection whose server answers a statement
/// with a completion tag starting with the armed text, at the end of that
/// answer (after the commit), once per arming.
#[derive(Clone, Default)]
struct Cut {
    armed: Arc<Mutex<Option<&'static str>>>,
    made: Arc<AtomicUsize>,
}

impl Cut {
    fn arm(&self, tag: &'static str) {
        *self.armed.lock().unwrap() = Some(tag);
    }

    fn made(&self) -> usize {
        self.made.load(Ordering::SeqCst)
    }

    /// Whether a statement tagged `tag` is the one to cut (disarming).
    fn takes(&self, tag: &[u8]) -> bool {
        let mut armed = self.armed.lock().unwrap();
        match *armed {
            Some(prefix) if tag.starts_with(prefix.as_bytes()) => {
                *armed = None;
                true
            }
            _ => false,
        }
    }
}

/// A proxy to the test server on a port of its own; returns its URL.
async fn proxy(cut: Cut) -> String {
    let direct: tokio_postgres::Config = url().parse().unwrap();
    let port = direct.get_ports()[0];
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let at = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let server = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
            tokio::spawn(relay(client, server, cut.clone()));
        }
    });
    let user = direct.get_user().unwrap();
    let dbname = direct.get_dbname().unwrap();
    format!("postgres://{user}@{at}/{dbname}")
}

/// Copies the client's bytes to the server as they come, and the
/// server's messages to the client one by one, until a cut: the armed
/// statement's completion and everything after it are held back until
/// the server is ready again (it has committed), then both sides close.
async fn relay(client: TcpStream, server: TcpStream, cut: Cut) {
    let (mut from_client, mut to_client) = client.into_split();
    let (mut from_server, mut to_server) = server.into_split();
    let up = tokio::spawn(async move {
        let _ = tokio::io::copy(&mut from_client, &mut to_server).await;
    });
    let mut buf = Vec::new();
    let mut cutting = false;
    loop {
        if from_server.read_buf(&mut buf).await.unwrap_or(0) == 0 {
            break;
        }
        // Every message from the server: a type byte and a length.
        while buf.len() >= 5 {
            let len = u32::from_be_bytes([buf[1], buf[2], buf[3], buf[4]]) as usize;
            if buf.len() < 1 + len {
                break;
            }
            let message: Vec<u8> = buf.drain(..1 + len).collect();
            match message[0] {
                b'Z' if cutting => {
                    cut.made.fetch_add(1, Ordering::SeqCst);
                    up.abort();
                    return;
                }
                _ if cutting => {}
                b'C' if cut.takes(&message[5..]) => cutting = true,
                _ => {
                    if to_client.write_all(&message).await.is_err() {
                        up.abort();
                        return;
                    }
                }
            }
        }
    }
    up.abort();
}

/// A test database reached through a new proxy, and its cut.
async fn behind_proxy() -> (PostgresDb, Cut) {
    let cut = Cut::default();
    let url = proxy(cut.clone()).await;
    let config = PostgresConfig {
        schema: fresh_schema(),
        ..small_pool()
    };
    (
        PostgresDb::from_db(TestDatabase::postgres_in(&url, config)),
        cut,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_completion_committed_without_its_answer_is_accepted_once() {
    let (db, cut) = behind_proxy().await;
    let queue = db.queue().await;
    let id = queue.enqueue("a", &1).await.unwrap();
    let lease = queue.claim("a").await.unwrap().unwrap();
    cut.arm("DELETE");
    lease
        .complete()
        .await
        .expect("the repeat found the completion applied");
    assert_eq!(cut.made(), 1, "the answer was withheld after the commit");
    assert!(queue.get(id).await.unwrap().is_none(), "completed");
    assert!(
        queue.claim("a").await.unwrap().is_none(),
        "nothing runs again"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follow_ups_committed_without_the_answer_are_named_not_enqueued_again() {
    let (db, cut) = behind_proxy().await;
    let queue = db.queue().await;
    let id = queue.enqueue("a", &1).await.unwrap();
    let lease = queue.claim("a").await.unwrap().unwrap();
    cut.arm("COMMIT");
    let follow_ups = vec![
        NewTask::json("b", &2).unwrap(),
        NewTask::json("b", &3).unwrap(),
    ];
    let enqueued = lease
        .complete_with(follow_ups)
        .await
        .expect("the completion was found committed");
    assert_eq!(cut.made(), 1, "the answer was withheld after the commit");
    let children = queue
        .list(&taskq::ListOptions {
            parent: Some(id),
            ..taskq::ListOptions::default()
        })
        .await
        .unwrap();
    assert_eq!(children.len(), 2, "the follow-ups exist once");
    let mut named: Vec<TaskId> = enqueued.iter().map(|e| e.id).collect();
    let mut found: Vec<TaskId> = children.iter().map(|t| t.id).collect();
    named.sort();
    found.sort();
    assert_eq!(named, found, "the caller hears the follow-ups that exist");
    assert!(queue.get(id).await.unwrap().is_none());
}
