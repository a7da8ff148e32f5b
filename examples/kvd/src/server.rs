//! The TCP server: one thread per connection, plus (on a follower) one replicating from the
//! primary.
//!
//! ```text
//! PING            -> PONG
//! SET key value   -> OK <offset>           (primary; a follower answers ERR readonly ...)
//! GET key         -> VALUE <value> | NONE
//! INFO            -> ROLE <primary|follower> OFFSET <n>
//! SYNC <offset>   -> ENTRY <n> <key> <value>, one line per write after <offset>, forever
//! SYNC <offset> 2 -> RECORD <n> <sum> <key> <value>, the same in protocol 2 (`protocol.rs`)
//! ```

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use crate::config::{Config, Role};
use crate::log::Log;
use crate::protocol;
use crate::store::Store;

struct Server {
    config: Config,
    store: Store,
    log: Log,
}

/// Serves until the process is killed.
pub fn run(config: Config) -> Result<(), String> {
    let log = Log::open(&config.log, &config.node)
        .map_err(|e| format!("log {}: {e}", config.log.display()))?;
    let role = match &config.role {
        Role::Primary => "primary",
        Role::Follower(_) => "follower",
    };
    protocol::stamp_data(&config.data)?;
    let store = Store::open(&config.data, role)
        .map_err(|e| format!("data {}: {e}", config.data.display()))?;
    let listener =
        TcpListener::bind(config.listen).map_err(|e| format!("listen {}: {e}", config.listen))?;
    log.line(format!(
        "kvd {} (protocol {}) listening on {} as {role}, {} writes in the log",
        env!("CARGO_PKG_VERSION"),
        protocol::PROTOCOL,
        config.listen,
        store.offset()
    ));
    let server = Arc::new(Server { config, store, log });
    if let Role::Follower(primary) = server.config.role.clone() {
        let s = server.clone();
        std::thread::spawn(move || s.follow(&primary));
    }
    for conn in listener.incoming() {
        match conn {
            Ok(stream) => {
                let s = server.clone();
                std::thread::spawn(move || {
                    if let Err(e) = s.serve(stream) {
                        s.log.line(format!("connection: {e}"));
                    }
                });
            }
            Err(e) => server.log.line(format!("accept: {e}")),
        }
    }
    Ok(())
}

impl Server {
    fn serve(&self, stream: TcpStream) -> std::io::Result<()> {
        let peer = stream.peer_addr()?;
        let mut out = stream.try_clone()?;
        for line in BufReader::new(stream).lines() {
            let line = line?;
            let mut words = line.splitn(3, ' ');
            let reply = match (words.next().unwrap_or(""), words.next(), words.next()) {
                ("PING", None, None) => "PONG".to_string(),
                ("INFO", None, None) => format!(
                    "ROLE {} OFFSET {}",
                    match self.config.role {
                        Role::Primary => "primary",
                        Role::Follower(_) => "follower",
                    },
                    self.store.offset()
                ),
                ("GET", Some(k), None) => match self.store.get(k) {
                    Some(v) => format!("VALUE {v}"),
                    None => "NONE".into(),
                },
                ("SET", Some(k), Some(v)) => match &self.config.role {
                    Role::Follower(p) => format!("ERR readonly: writes go to the primary {p}"),
                    Role::Primary => match self.store.append(k, v) {
                        Ok(n) => format!("OK {n}"),
                        Err(e) => format!("ERR {e}"),
                    },
                },
                ("SYNC", Some(n), version) => {
                    let Ok(from) = n.parse::<u64>() else {
                        writeln!(out, "ERR bad offset {n:?}")?;
                        continue;
                    };
                    let version = match version.map(str::parse::<u32>) {
                        None => protocol::OLDEST,
                        Some(Ok(v)) if (protocol::OLDEST..=protocol::PROTOCOL).contains(&v) => v,
                        Some(_) => {
                            writeln!(
                                out,
                                "ERR unknown protocol {:?}: this primary speaks protocols {} to {}",
                                version.unwrap_or(""),
                                protocol::OLDEST,
                                protocol::PROTOCOL
                            )?;
                            continue;
                        }
                    };
                    self.log.line(format!(
                        "follower {peer} syncing from offset {from} in protocol {version}"
                    ));
                    return self.stream_log(out, from, version);
                }
                _ => format!("ERR unknown command {line:?}"),
            };
            writeln!(out, "{reply}")?;
        }
        Ok(())
    }

    /// Sends every write after `from`, then each new one as it comes, until the follower goes.
    fn stream_log(&self, mut out: TcpStream, mut from: u64, version: u32) -> std::io::Result<()> {
        loop {
            let batch = self.store.wait_after(from);
            let mut text = String::new();
            for (n, k, v) in &batch {
                text.push_str(&protocol::record_line(version, *n, k, v));
                from = *n;
            }
            out.write_all(text.as_bytes())?;
        }
    }

    /// Follows the primary forever: sync from our offset in our newest protocol (in protocol 1
    /// when the primary refuses that), apply entries in order, and on any break reconnect after
    /// a short pause (the primary may be restarting, perhaps as another version).
    fn follow(&self, primary: &str) {
        let mut version = protocol::PROTOCOL;
        loop {
            match self.follow_once(primary, version) {
                Ok(Some(refusal)) if version > protocol::OLDEST => {
                    self.log.line(format!(
                        "primary {primary} refused protocol {version} ({refusal}): asking in \
                         protocol {}",
                        protocol::OLDEST
                    ));
                    version = protocol::OLDEST;
                    continue;
                }
                Ok(Some(refusal)) => self
                    .log
                    .line(format!("replication from {primary}: {refusal}")),
                Ok(None) => self
                    .log
                    .line(format!("primary {primary} closed the stream")),
                Err(e) => self.log.line(format!("replication from {primary}: {e}")),
            }
            version = protocol::PROTOCOL;
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// One connection to the primary; `Ok(Some(reply))` when it answered the sync with `ERR`.
    fn follow_once(&self, primary: &str, version: u32) -> std::io::Result<Option<String>> {
        let mut s = TcpStream::connect(primary)?;
        let from = self.store.offset();
        if version > protocol::OLDEST {
            writeln!(s, "SYNC {from} {version}")?;
        } else {
            writeln!(s, "SYNC {from}")?;
        }
        self.log.line(format!(
            "following {primary} from offset {from} in protocol {version}"
        ));
        for line in BufReader::new(s).lines() {
            let line = line?;
            if line.starts_with("ERR") {
                return Ok(Some(line));
            }
            let (n, k, v) =
                protocol::parse_record(version, &line).map_err(std::io::Error::other)?;
            let have = self.store.offset();
            if n != have + 1 {
                return Err(std::io::Error::other(format!(
                    "entry {n} does not follow our offset {have}"
                )));
            }
            self.store.append(k, v)?;
        }
        Ok(None)
    }
}
