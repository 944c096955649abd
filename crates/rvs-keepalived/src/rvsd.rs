//! rvsd's API, as the async parts use it.
//!
//! A request opens its own connection to rvsd's unix socket (rvsd may be
//! restarted under a running rvs-keepalived; a connection per request
//! needs no reconnect logic), on tokio's blocking pool because
//! [`rvs_api::Client`] is synchronous. Requests are rare (state
//! changes, not checks), so this costs nothing that matters.

use std::path::{Path, PathBuf};

use rvs_api::{Client, ClientError};
use rvs_api::{Reply, Request};

/// A handle on one rvsd.
#[derive(Debug, Clone)]
pub(crate) struct Rvsd {
    socket: PathBuf,
}

impl Rvsd {
    /// rvsd listening on `socket`.
    pub(crate) fn new(socket: &Path) -> Rvsd {
        Rvsd {
            socket: socket.to_path_buf(),
        }
    }

    /// The socket path.
    pub(crate) fn socket(&self) -> &Path {
        &self.socket
    }

    /// Sends one request and returns the reply; rvsd's refusal is an
    /// error with rvsd's message.
    pub(crate) async fn call(&self, req: Request) -> anyhow::Result<Reply> {
        let socket = self.socket.clone();
        tokio::task::spawn_blocking(move || -> anyhow::Result<Reply> {
            // The connection error names the socket already.
            let mut c = Client::connect(&socket)?;
            c.call(&req)
                .map_err(|e: ClientError| anyhow::anyhow!("rvsd at {}: {e}", socket.display()))
        })
        .await?
    }
}
