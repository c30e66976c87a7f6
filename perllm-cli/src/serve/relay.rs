//! `perllm link-relay`: a TCP relay that delays every byte by a one-way latency (with optional
//! jitter) in each direction: the latency half of an emulated link where the kernel has no
//! `netem` qdisc. scripts/netem-links.sh runs one inside each backend's network namespace and
//! leaves the bandwidth to the kernel (`tbf` on the namespace's veth pair).
//!
//! Each chunk read from one side is written to the other side at (its arrival + latency + a
//! normal draw of standard deviation `jitter`), never before the chunk ahead of it: bytes keep
//! their order, as TCP would deliver them. Connection set-up is not delayed (a new connection
//! costs no extra round trip, unlike a real link); closing one side closes the other after the
//! delayed bytes are delivered.

use crate::error::Result;
use clap::Args;
use perllm_core::rng::{Rng, stream_rng, unit_f64};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::Instant;

/// `perllm link-relay`.
#[derive(Debug, Args)]
pub struct RelayArgs {
    /// Address to listen on (port 0: any free port; the address is printed on stdout).
    #[arg(long, value_name = "HOST:PORT")]
    pub listen: String,
    /// Address to forward each connection to.
    #[arg(long, value_name = "HOST:PORT")]
    pub to: String,
    /// One-way delay added in each direction (none: 0).
    #[arg(long, value_name = "DURATION", value_parser = crate::util::parse_duration)]
    pub delay: Option<Duration>,
    /// Standard deviation of a normal variation of the delay (order is kept; never below 0).
    #[arg(long, value_name = "DURATION", value_parser = crate::util::parse_duration)]
    pub jitter: Option<Duration>,
    /// Seed of the jitter draws.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub seed: u64,
}

/// Bytes read per chunk (a chunk is delayed as one piece).
const CHUNK: usize = 64 * 1024;

/// Run the relay until SIGTERM or Ctrl-C.
pub fn link_relay(a: RelayArgs) -> Result<()> {
    let rt = super::runtime(1)?;
    rt.block_on(async move {
        let (l, addr) = super::bind(&a.listen).await?;
        println!(
            "perllm link-relay: {:?} each way (jitter {:?}) from http://{addr} to {}",
            a.delay.unwrap_or_default(),
            a.jitter.unwrap_or_default(),
            a.to
        );
        tokio::select! {
            r = accept_loop(l, a) => r,
            _ = perllm_openai::termination() => Ok(()),
        }
    })
}

async fn accept_loop(l: TcpListener, a: RelayArgs) -> Result<()> {
    let mut conn: u64 = 0;
    loop {
        let (client, _) = match l.accept().await {
            Ok(c) => c,
            // A full file table or an aborted handshake: keep serving the others.
            Err(e) => {
                eprintln!("perllm link-relay: accept: {e}");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        conn += 1;
        let (to, delay, jitter) = (
            a.to.clone(),
            a.delay.unwrap_or_default(),
            a.jitter.unwrap_or_default(),
        );
        // Two streams per connection, so neither direction's draws depend on the other's.
        let rngs = (
            stream_rng(a.seed, 2 * conn),
            stream_rng(a.seed, 2 * conn + 1),
        );
        tokio::spawn(async move {
            let upstream = match TcpStream::connect(&to).await {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("perllm link-relay: cannot connect to {to}: {e}");
                    return;
                }
            };
            let _ = client.set_nodelay(true);
            let _ = upstream.set_nodelay(true);
            let (cr, cw) = client.into_split();
            let (ur, uw) = upstream.into_split();
            let d = Delay { delay, jitter };
            tokio::join!(pipe(cr, uw, d, rngs.0), pipe(ur, cw, d, rngs.1));
        });
    }
}

#[derive(Clone, Copy)]
struct Delay {
    delay: Duration,
    jitter: Duration,
}

impl Delay {
    /// This chunk's delay: the latency plus a normal draw (Box-Muller), at least 0.
    fn draw(&self, rng: &mut Rng) -> Duration {
        if self.jitter.is_zero() {
            return self.delay;
        }
        let (u1, u2) = (1.0 - unit_f64(rng), unit_f64(rng));
        let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
        let s = self.delay.as_secs_f64() + z * self.jitter.as_secs_f64();
        Duration::from_secs_f64(s.max(0.0))
    }
}

/// Copy `from` to `to`, each chunk delivered at its due time; end (shutting `to`'s write side)
/// once `from` has ended and every delayed chunk is written.
async fn pipe(
    from: tokio::net::tcp::OwnedReadHalf,
    to: tokio::net::tcp::OwnedWriteHalf,
    d: Delay,
    mut rng: Rng,
) {
    // At most this many chunks (64 MiB) delayed at once; a full queue stops reading (backpressure).
    let (tx, mut rx) = mpsc::channel::<(Instant, Vec<u8>)>(1024);
    let reader = async move {
        let mut last = Instant::now();
        let mut buf = vec![0u8; CHUNK];
        loop {
            if from.readable().await.is_err() {
                break;
            }
            match from.try_read(&mut buf) {
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let due = (Instant::now() + d.draw(&mut rng)).max(last);
                    last = due;
                    if tx.send((due, buf[..n].to_vec())).await.is_err() {
                        break;
                    }
                }
            }
        }
    };
    let writer = async move {
        while let Some((due, bytes)) = rx.recv().await {
            tokio::time::sleep_until(due).await;
            if write_all(&to, &bytes).await.is_err() {
                return;
            }
        }
        // Dropping `to` shuts its write side down: the peer reads the end of the stream.
    };
    tokio::join!(reader, writer);
}

/// Write every byte (tokio's `io-util` is not in this build: readiness and `try_write`).
async fn write_all(to: &tokio::net::tcp::OwnedWriteHalf, mut bytes: &[u8]) -> std::io::Result<()> {
    while !bytes.is_empty() {
        to.writable().await?;
        match to.try_write(bytes) {
            Ok(n) => bytes = &bytes[n..],
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
