//! Accepting connections: hyper with a header-read timeout, and a graceful shutdown with a
//! deadline.
//!
//! `axum::serve` runs hyper without a timer, and hyper's header-read timeout only works with
//! one, so under `axum::serve` a client could open connections and send its request headers a
//! byte at a time for as long as it liked. This loop is `axum::serve` with a timer: a
//! connection that has not sent complete request headers within `header_read_timeout` (on each
//! new request of a kept-alive connection too) is closed. Request bodies are covered by the
//! request timeout (`web::request_timeout`) and, for uploads, by the body idle timeout.
use std::net::SocketAddr;
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower::{Service, ServiceExt};

/// Serves `app` until `stop` is cancelled; then stops accepting, asks every open connection to
/// finish its request in flight and close, and waits for them up to `deadline`.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    header_read_timeout: Duration,
    stop: CancellationToken,
    deadline: Duration,
) -> anyhow::Result<()> {
    // With the peer's address, for sign-in throttling per client address.
    let mut make_service = app.into_make_service_with_connect_info::<SocketAddr>();
    let graceful = GracefulShutdown::new();
    let mut builder = Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new()).header_read_timeout(header_read_timeout);
    builder.http2().timer(TokioTimer::new());
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    // Out of file descriptors and the like: wait instead of spinning.
                    tracing::warn!(error = %e, "could not accept a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = stop.cancelled() => break,
        };
        let service = match make_service.call(peer).await {
            Ok(s) => s,
            Err(never) => match never {},
        };
        let service = service.map_request(|req: Request<Incoming>| req.map(Body::new));
        let connection = builder
            .serve_connection_with_upgrades(TokioIo::new(stream), TowerToHyperService::new(service))
            .into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::trace!(error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(deadline) => {
            tracing::warn!("requests still running at the shutdown deadline; exiting anyway");
        }
    }
    Ok(())
}
