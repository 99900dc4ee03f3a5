//! Open client connections, counted for the decision writer's linger.
//!
//! HTTP/1.1 clients keep a connection per request in flight, so the number of open connections is
//! the server's best view of its concurrency: under CPU load most requests in flight have not
//! reached a handler yet (they wait in the socket and the runtime's queues), so no count taken
//! inside the router sees them. [`Counted`] wraps the listener (plain TCP or TLS) and keeps the
//! count in a gauge the writer reads ([`crate::decision_writer::DecisionWriter::connections`]).
//!
//! Invariant: the gauge equals the number of live [`CountedIo`] values — incremented when the
//! listener yields a connection, decremented when the connection's I/O object is dropped
//! (closed by either side, or the server stopping).

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// A listener whose connections are counted in `open`.
pub struct Counted<L> {
    inner: L,
    open: Arc<AtomicUsize>,
}

impl<L> Counted<L> {
    /// Wraps `inner`; every connection it yields counts in `open` while it lives.
    pub fn new(inner: L, open: Arc<AtomicUsize>) -> Self {
        Counted { inner, open }
    }
}

impl<L> axum::serve::Listener for Counted<L>
where
    L: axum::serve::Listener,
{
    type Io = CountedIo<L::Io>;
    type Addr = L::Addr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        let (io, addr) = self.inner.accept().await;
        self.open.fetch_add(1, Ordering::AcqRel);
        let io = CountedIo {
            inner: io,
            open: self.open.clone(),
        };
        (io, addr)
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

/// A connection counted in its listener's gauge until dropped. Reads and writes go straight to
/// the wrapped stream (vectored writes included).
pub struct CountedIo<T> {
    inner: T,
    open: Arc<AtomicUsize>,
}

impl<T> Drop for CountedIo<T> {
    fn drop(&mut self) {
        self.open.fetch_sub(1, Ordering::AcqRel);
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for CountedIo<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for CountedIo<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::serve::Listener as _;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    #[tokio::test]
    async fn the_gauge_counts_open_connections_and_data_passes_through() {
        let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = tcp.local_addr().unwrap();
        let open = Arc::new(AtomicUsize::new(0));
        let mut listener = Counted::new(tcp, open.clone());
        let mut a = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (mut sa, _) = listener.accept().await;
        let b = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (sb, _) = listener.accept().await;
        assert_eq!(open.load(Ordering::Acquire), 2);
        a.write_all(b"ping").await.unwrap();
        let mut got = [0u8; 4];
        sa.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"ping");
        sa.write_all(b"pong").await.unwrap();
        a.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"pong");
        drop((sb, b));
        assert_eq!(open.load(Ordering::Acquire), 1);
        drop(sa);
        assert_eq!(open.load(Ordering::Acquire), 0);
    }
}
