//! A TCP listener whose connections a handler can abort: the "reset" fault.
//!
//! Every accepted stream carries a shared flag. A handler sets it through [`ConnHandle`] (which
//! it gets as connect info); from then on every read or write on that stream fails, so hyper
//! gives up on the connection without writing the response, and the socket is closed with
//! `SO_LINGER=0`, which makes the kernel send a TCP RST. The client sees a connection reset (or
//! "connection closed before message completed"), never an HTTP answer.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::connect_info::Connected;
use axum::serve::{IncomingStream, Listener};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

/// The listener handed to `axum::serve`.
pub struct SimListener {
    inner: TcpListener,
}

impl SimListener {
    pub async fn bind(addr: SocketAddr) -> io::Result<SimListener> {
        Ok(SimListener {
            inner: TcpListener::bind(addr).await?,
        })
    }
}

impl Listener for SimListener {
    type Io = SimStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (SimStream, SocketAddr) {
        loop {
            match self.inner.accept().await {
                Ok((stream, addr)) => {
                    let _ = stream.set_nodelay(true);
                    return (
                        SimStream {
                            inner: stream,
                            abort: Arc::new(AtomicBool::new(false)),
                            lingering: false,
                        },
                        addr,
                    );
                }
                Err(e) => {
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }
}

/// A TCP stream that fails all I/O once aborted.
pub struct SimStream {
    inner: TcpStream,
    abort: Arc<AtomicBool>,
    lingering: bool,
}

impl SimStream {
    /// When aborted: arrange for an RST on close and return the error to hand to hyper.
    fn aborted(&mut self) -> Option<io::Error> {
        if !self.abort.load(Ordering::SeqCst) {
            return None;
        }
        if !self.lingering {
            self.lingering = true;
            let _ = self.inner.set_zero_linger();
        }
        Some(io::Error::new(
            io::ErrorKind::ConnectionReset,
            "connection reset by a simulator fault",
        ))
    }
}

impl AsyncRead for SimStream {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        if let Some(e) = self.aborted() {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for SimStream {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        if let Some(e) = self.aborted() {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if let Some(e) = self.aborted() {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if let Some(e) = self.aborted() {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        if let Some(e) = self.aborted() {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// Connect info given to handlers: lets them abort their own connection.
#[derive(Clone, Debug)]
pub struct ConnHandle {
    abort: Arc<AtomicBool>,
}

impl ConnHandle {
    /// Abort the connection: no response will be written.
    pub fn abort(&self) {
        self.abort.store(true, Ordering::SeqCst);
    }
}

impl Connected<IncomingStream<'_, SimListener>> for ConnHandle {
    fn connect_info(stream: IncomingStream<'_, SimListener>) -> Self {
        ConnHandle {
            abort: stream.io().abort.clone(),
        }
    }
}
