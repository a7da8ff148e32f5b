//! kvd: a small replicated key-value server over TCP, the example service of cluster-sim's
//! "your own service on the nodes" (see book/src/your-own-service.md). Standard library only.
//!
//! ```text
//! kvd --version
//! kvd serve CONF_DIR          read CONF_DIR/kvd.conf and serve
//! kvd cli ADDR COMMAND...     send one command, print the reply (exit 1 on ERR)
//! ```
//!
//! One primary takes writes; followers connect to it with `SYNC <offset> 2` (`SYNC <offset>`
//! to a protocol-1 primary) and apply the log it streams from there, checking each record's
//! checksum in protocol 2. Every node keeps its log in `<data>/wal` and replays it at start,
//! so a follower that was down catches up from where it stopped. The data folder carries the
//! protocol version of the newest kvd that opened it, and an older kvd refuses it (`protocol.rs`).

mod config;
mod log;
mod protocol;
mod server;
mod store;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::process::ExitCode;
use std::time::Duration;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("--version" | "-V") => {
            println!(
                "kvd {} (protocol {})",
                env!("CARGO_PKG_VERSION"),
                protocol::PROTOCOL
            );
            ExitCode::SUCCESS
        }
        Some("serve") if args.len() == 2 => match config::Config::read(&args[1]) {
            Ok(c) => match server::run(c) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("kvd: {e}");
                    ExitCode::FAILURE
                }
            },
            Err(e) => {
                eprintln!("kvd: {e}");
                ExitCode::from(2)
            }
        },
        Some("cli") if args.len() >= 3 => cli(&args[1], &args[2..].join(" ")),
        _ => {
            eprintln!("usage: kvd --version | kvd serve CONF_DIR | kvd cli ADDR COMMAND...");
            ExitCode::from(2)
        }
    }
}

/// Sends one command line and prints the one-line reply.
fn cli(addr: &str, line: &str) -> ExitCode {
    let reply = (|| -> std::io::Result<String> {
        let addr = std::net::ToSocketAddrs::to_socket_addrs(addr)?
            .next()
            .ok_or_else(|| std::io::Error::other("no address"))?;
        let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
        s.set_read_timeout(Some(Duration::from_secs(10)))?;
        writeln!(s, "{line}")?;
        let mut reply = String::new();
        BufReader::new(s).read_line(&mut reply)?;
        Ok(reply.trim_end().to_string())
    })();
    match reply {
        Ok(r) if r.starts_with("ERR") || r.is_empty() => {
            eprintln!("{r}");
            ExitCode::FAILURE
        }
        Ok(r) => {
            println!("{r}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("kvd cli {addr}: {e}");
            ExitCode::FAILURE
        }
    }
}
