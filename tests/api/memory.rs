//! Server memory after password hashing: argon2 takes 19 MiB per hash, and glibc's dynamic
//! mmap threshold used to keep every one of those blocks resident (16 hashes: 21 → 315 MiB).
//! The server pins the threshold (`pin_malloc_mmap_threshold` in main.rs), so the memory of a
//! hash goes back to the system when the hash ends.
use app::api_types::*;
use reqwest::Method;

use crate::common::*;

both_backends!(password_hashes_do_not_stay_resident);

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("the server's /proc status");
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).expect("VmRSS");
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

async fn password_hashes_do_not_stay_resident(b: Backend) {
    let server = TestServer::start(b).await;
    let pid = server.pid().expect("the server runs");
    let admin = server.admin().await;
    let before = rss_kib(pid);
    // 8 users created and signed in at once: 16 hashes on the blocking threads.
    let mut tasks = Vec::new();
    for i in 0..8 {
        let (admin, base) = (admin.clone(), server.base_url().to_string());
        tasks.push(tokio::spawn(async move {
            let name = format!("mem{i}");
            admin.create_user(&name, &password_for(&name), Role::Labeler).await;
            let c = Client::new(&base);
            c.login(&name, &password_for(&name)).await;
            c.raw(Method::GET, "/api/me", None).await.assert_status(200);
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let after = rss_kib(pid);
    let grown_mib = after.saturating_sub(before) / 1024;
    // 16 resident hashes would be ~300 MiB; a few transient blocks and caches stay well under.
    assert!(grown_mib < 80, "RSS grew by {grown_mib} MiB over 16 password hashes ({before} → {after} KiB)");
}
