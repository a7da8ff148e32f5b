//! A blocking client of kvd's line protocol (see `server.rs`), with a deadline on every call:
//! what a test drives kvd with from its own process. Standard library only.

use std::fmt;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

/// A connection to one kvd node.
///
/// ```no_run
/// use std::time::Duration;
///
/// let mut c = kvd::Client::connect("10.199.0.2:7400", Duration::from_secs(1))?;
/// c.ping()?;
/// let offset = c.set("k", "v1")?; // the primary only; a follower answers Error::Server
/// assert_eq!(c.get("k")?.as_deref(), Some("v1"));
/// println!("{offset} writes; {:?}", c.info()?);
/// # Ok::<(), kvd::Error>(())
/// ```
#[derive(Debug)]
pub struct Client {
    addr: SocketAddr,
    reader: BufReader<TcpStream>,
}

/// A node's `INFO`: its role and how many writes its log holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Info {
    /// `primary` or `follower`.
    pub role: String,
    /// Writes in the node's log.
    pub offset: u64,
}

/// Why a call failed, and whether its command may have taken effect.
#[derive(Debug)]
pub enum Error {
    /// No connection was made: nothing was sent, so nothing happened.
    Connect {
        /// The node.
        addr: String,
        /// Why.
        source: std::io::Error,
    },
    /// The command was sent (or may have been) and no reply came in time: it may or may not
    /// have taken effect.
    Io {
        /// The node.
        addr: SocketAddr,
        /// The command.
        command: String,
        /// Why.
        source: std::io::Error,
    },
    /// The server refused the command (`ERR ...`): it did not take effect.
    Server {
        /// The node.
        addr: SocketAddr,
        /// The command.
        command: String,
        /// The server's words, after `ERR `.
        message: String,
    },
    /// A reply the protocol does not have.
    Reply {
        /// The node.
        addr: SocketAddr,
        /// The command.
        command: String,
        /// The reply.
        reply: String,
    },
}

impl Error {
    /// Whether the command may have taken effect even though the call failed: true only when
    /// it was sent and no reply (or no reply we understand) came back. A test records such a
    /// write `info`, any other failure `fail`.
    pub fn may_have_taken_effect(&self) -> bool {
        matches!(self, Error::Io { .. } | Error::Reply { .. })
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Connect { addr, source } => write!(f, "kvd {addr}: cannot connect: {source}"),
            Error::Io {
                addr,
                command,
                source,
            } => write!(f, "kvd {addr}: {command}: {source}"),
            Error::Server {
                addr,
                command,
                message,
            } => write!(f, "kvd {addr}: {command}: {message}"),
            Error::Reply {
                addr,
                command,
                reply,
            } => write!(f, "kvd {addr}: {command}: unexpected reply {reply:?}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Connect { source, .. } | Error::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

impl Client {
    /// Connects to `addr` (`host:port`) within `timeout`; every later call's reply must come
    /// within `timeout` too.
    pub fn connect(
        addr: impl ToSocketAddrs + fmt::Display,
        timeout: Duration,
    ) -> Result<Client, Error> {
        let connect_err = |source| Error::Connect {
            addr: addr.to_string(),
            source,
        };
        let resolved = addr
            .to_socket_addrs()
            .map_err(connect_err)?
            .next()
            .ok_or_else(|| connect_err(std::io::Error::other("the name has no address")))?;
        let stream = TcpStream::connect_timeout(&resolved, timeout).map_err(connect_err)?;
        let timeouts = stream
            .set_read_timeout(Some(timeout))
            .and_then(|()| stream.set_write_timeout(Some(timeout)))
            .and_then(|()| stream.set_nodelay(true));
        timeouts.map_err(connect_err)?;
        Ok(Client {
            addr: resolved,
            reader: BufReader::new(stream),
        })
    }

    /// The node's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Sends one command line and reads the one-line reply; `ERR ...` is [`Error::Server`].
    fn call(&mut self, command: &str) -> Result<String, Error> {
        let io = |source| Error::Io {
            addr: self.addr,
            command: command.to_string(),
            source,
        };
        let mut line = String::new();
        let sent = writeln!(self.reader.get_mut(), "{command}");
        sent.map_err(io)?;
        let n = self.reader.read_line(&mut line).map_err(io)?;
        if n == 0 {
            return Err(io(std::io::Error::from(std::io::ErrorKind::UnexpectedEof)));
        }
        let reply = line.trim_end().to_string();
        match reply.strip_prefix("ERR ") {
            Some(message) => Err(Error::Server {
                addr: self.addr,
                command: command.to_string(),
                message: message.to_string(),
            }),
            None => Ok(reply),
        }
    }

    fn unexpected(&self, command: &str, reply: String) -> Error {
        Error::Reply {
            addr: self.addr,
            command: command.to_string(),
            reply,
        }
    }

    /// `PING`: the node answers.
    pub fn ping(&mut self) -> Result<(), Error> {
        match self.call("PING")? {
            r if r == "PONG" => Ok(()),
            r => Err(self.unexpected("PING", r)),
        }
    }

    /// `GET key`: the node's value of `key` (`None`: it has none). A follower answers from what
    /// it has replicated so far, which may be behind the primary.
    pub fn get(&mut self, key: &str) -> Result<Option<String>, Error> {
        let command = format!("GET {key}");
        match self.call(&command)? {
            r if r == "NONE" => Ok(None),
            r => match r.strip_prefix("VALUE ") {
                Some(v) => Ok(Some(v.to_string())),
                None => Err(self.unexpected(&command, r)),
            },
        }
    }

    /// `SET key value` on the primary: the write's offset in its log. A follower refuses it
    /// ([`Error::Server`]). Keys are one word; values may hold spaces but no newline.
    pub fn set(&mut self, key: &str, value: &str) -> Result<u64, Error> {
        let command = format!("SET {key} {value}");
        let r = self.call(&command)?;
        match r.strip_prefix("OK ").and_then(|n| n.parse().ok()) {
            Some(n) => Ok(n),
            None => Err(self.unexpected(&command, r)),
        }
    }

    /// `INFO`: the node's role and offset.
    pub fn info(&mut self) -> Result<Info, Error> {
        let r = self.call("INFO")?;
        let mut words = r.split(' ');
        match (words.next(), words.next(), words.next(), words.next()) {
            (Some("ROLE"), Some(role), Some("OFFSET"), Some(n)) => match n.parse() {
                Ok(offset) => Ok(Info {
                    role: role.to_string(),
                    offset,
                }),
                Err(_) => Err(self.unexpected("INFO", r)),
            },
            _ => Err(self.unexpected("INFO", r)),
        }
    }
}
