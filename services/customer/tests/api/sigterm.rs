//! SIGTERM, as Kubernetes sends it, to the real `crm-customer` process under load: readiness
//! turns false while in-flight calls complete, every call either completes or is refused before
//! it ran (the database holds exactly the answered writes), and the process exits 0 within its
//! grace period.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crm_proto::customer as pb;

use crate::helpers::process;

#[tokio::test]
async fn sigterm_drains_in_flight_calls_and_exits_zero() {
    let db_url = crm_testkit::fresh_db_url().await;
    let mut process = process(&db_url, &crm_testkit::unique("customer-events"), 0);
    process.start().await;
    let (grpc, http) = (process.grpc, process.http);

    let channel = tonic::transport::Channel::from_shared(format!("http://127.0.0.1:{grpc}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let client = pb::customer_service_client::CustomerServiceClient::new(
        crm_testkit::identity::signed(channel, "customer"),
    );
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed_mid_call) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let mut workers = Vec::new();
    for i in 0..8 {
        let (mut client, stop, ok, bad) = (
            client.clone(),
            stop.clone(),
            ok.clone(),
            failed_mid_call.clone(),
        );
        workers.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let mut request = tonic::Request::new(pb::CreateAccountRequest {
                    name: format!("load {i}"),
                    ..Default::default()
                });
                crm_access::Access::system(uuid::Uuid::now_v7())
                    .to_metadata(request.metadata_mut());
                match client.create_account(request).await {
                    Ok(_) => {
                        ok.fetch_add(1, Ordering::Relaxed);
                    }
                    // Refused at the door: the server stopped taking calls (GOAWAY), or the
                    // connection closed as the request was being sent. Whether such a call ran
                    // is settled below: every account written must be a call answered OK.
                    Err(status)
                        if matches!(
                            status.code(),
                            tonic::Code::Unavailable | tonic::Code::Cancelled
                        ) =>
                    {
                        break;
                    }
                    Err(status) => {
                        eprintln!("failed mid-call: {status:?}");
                        bad.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }));
    }
    crm_testkit::eventually("load is running", Duration::from_secs(30), || async {
        ok.load(Ordering::Relaxed) > 0
    })
    .await;

    let sent = Instant::now();
    process.signal("TERM");
    // Readiness goes first: not ready (or already gone) right away.
    let readyz = reqwest::get(format!("http://127.0.0.1:{http}/readyz")).await;
    assert!(
        readyz.as_ref().map_or(true, |r| r.status() == 503),
        "still ready after SIGTERM: {readyz:?}"
    );
    let status = process.wait().await;
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        let _ = w.await;
    }
    let took = sent.elapsed();
    println!(
        "SIGTERM: exit {status} after {took:?}; {} calls answered, {} failed mid-call",
        ok.load(Ordering::Relaxed),
        failed_mid_call.load(Ordering::Relaxed)
    );
    assert!(status.success(), "exit status {status}");
    assert!(
        took < Duration::from_secs(15),
        "within the grace period: {took:?}"
    );
    assert_eq!(failed_mid_call.load(Ordering::Relaxed), 0);

    // Every answered create is in the database and in the outbox: nothing half-done.
    let db = sqlx::PgPool::connect(&db_url).await.unwrap();
    let (accounts, events): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM accounts), (SELECT count(*) FROM event_outbox \
         WHERE event_type NOT LIKE '%.resources.declared')",
    )
    .fetch_one(&db)
    .await
    .unwrap();
    assert_eq!(accounts, events, "each account with its event");
    // Exactly the answered calls wrote: none was cut off after it wrote (its answer lost) and
    // none of the refused ones ran.
    assert_eq!(accounts as u64, ok.load(Ordering::Relaxed));
}
