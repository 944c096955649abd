//! The client side of the unix-socket protocol (framing: see the crate docs).

use std::ffi::OsString;
use std::fmt;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::types::{ApiError, Reply, Request, Response};

/// Where rvsd listens unless told otherwise.
pub const DEFAULT_SOCKET: &str = "/run/rvs/rvsd.sock";

/// The environment variable that overrides [`DEFAULT_SOCKET`].
pub const SOCKET_ENV: &str = "RVS_SOCKET";

/// The longest line either side accepts (a listing of many services or
/// connections is one line).
pub const MAX_LINE: usize = 64 << 20;

/// How long the client waits for rvsd to answer one request.
pub const TIMEOUT: Duration = Duration::from_secs(30);

/// The socket path: `explicit` (a `--socket` option) if given, else
/// `$RVS_SOCKET` if set and non-empty, else [`DEFAULT_SOCKET`].
pub fn socket_path(explicit: Option<&Path>, env: Option<OsString>) -> PathBuf {
    if let Some(p) = explicit {
        return p.to_path_buf();
    }
    match env {
        Some(e) if !e.is_empty() => PathBuf::from(e),
        _ => PathBuf::from(DEFAULT_SOCKET),
    }
}

/// Why a call failed.
#[derive(Debug)]
pub enum ClientError {
    /// The socket could not be reached or broke.
    Io(io::Error),
    /// rvsd sent something that is not a response.
    Protocol(String),
    /// rvsd refused the request; nothing changed.
    Api(ApiError),
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Io(e) => write!(f, "{e}"),
            ClientError::Protocol(e) => write!(f, "bad answer from rvsd: {e}"),
            ClientError::Api(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for ClientError {}

impl From<io::Error> for ClientError {
    fn from(e: io::Error) -> Self {
        ClientError::Io(e)
    }
}

/// Writes one message as a line.
pub fn write_message<W: Write, T: Serialize>(w: &mut W, msg: &T) -> io::Result<()> {
    // serde_json escapes control characters inside strings, so the encoding
    // holds no raw newline.
    let mut line = serde_json::to_vec(msg).map_err(io::Error::other)?;
    line.push(b'\n');
    w.write_all(&line)?;
    w.flush()
}

/// Reads one line-framed message; `Ok(None)` at a clean end of stream.
pub fn read_message<R: BufRead, T: DeserializeOwned>(r: &mut R) -> io::Result<Option<T>> {
    let mut line = Vec::new();
    let n = r
        .by_ref()
        .take(MAX_LINE as u64 + 1)
        .read_until(b'\n', &mut line)?;
    if n == 0 {
        return Ok(None);
    }
    if line.last() != Some(&b'\n') {
        let why = if line.len() > MAX_LINE {
            "line too long"
        } else {
            "stream ended inside a message"
        };
        return Err(io::Error::new(io::ErrorKind::InvalidData, why));
    }
    serde_json::from_slice(&line)
        .map(Some)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// A connection to rvsd. Requests are answered in order, one at a time.
#[derive(Debug)]
pub struct Client {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl Client {
    /// Connects to the socket at `path`.
    pub fn connect(path: &Path) -> io::Result<Client> {
        let stream = UnixStream::connect(path).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot reach rvsd at {}: {e}", path.display()),
            )
        })?;
        stream.set_read_timeout(Some(TIMEOUT))?;
        stream.set_write_timeout(Some(TIMEOUT))?;
        let writer = stream.try_clone()?;
        Ok(Client {
            reader: BufReader::new(stream),
            writer,
        })
    }

    /// Sends a request and waits for its response.
    pub fn call(&mut self, req: &Request) -> Result<Reply, ClientError> {
        write_message(&mut self.writer, req)?;
        match read_message::<_, Response>(&mut self.reader) {
            Ok(Some(Response::Ok(reply))) => Ok(reply),
            Ok(Some(Response::Error(e))) => Err(ClientError::Api(e)),
            Ok(None) => Err(ClientError::Protocol("connection closed".into())),
            Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                Err(ClientError::Protocol(e.to_string()))
            }
            Err(e) => Err(ClientError::Io(e)),
        }
    }
}
