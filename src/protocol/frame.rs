//! Frames: a 4-byte big-endian size, then that many bytes.

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Kafka's `socket.request.max.bytes` default (100 MiB): a larger frame is refused, not allocated.
pub const MAX_FRAME_BYTES: usize = 104_857_600;

#[derive(Debug)]
pub enum FrameError {
    Io(std::io::Error),
    /// The size prefix is negative or above `MAX_FRAME_BYTES`.
    BadSize(i32),
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FrameError::Io(e) => write!(f, "{e}"),
            FrameError::BadSize(n) => {
                write!(f, "frame size {n} is out of range 0..={MAX_FRAME_BYTES}")
            }
        }
    }
}

/// Reads one frame; `Ok(None)` when the peer closed the connection between frames.
pub async fn read_frame<R: AsyncRead + Unpin>(reader: &mut R) -> Result<Option<Bytes>, FrameError> {
    let mut size = [0u8; 4];
    match reader.read_exact(&mut size).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(FrameError::Io(e)),
    }
    let size = i32::from_be_bytes(size);
    if size < 0 || size as usize > MAX_FRAME_BYTES {
        return Err(FrameError::BadSize(size));
    }
    let mut body = BytesMut::zeroed(size as usize);
    reader.read_exact(&mut body).await.map_err(FrameError::Io)?;
    Ok(Some(body.freeze()))
}

pub async fn write_frame<W: AsyncWrite + Unpin>(
    writer: &mut W,
    body: &[u8],
) -> std::io::Result<()> {
    let mut out = Vec::with_capacity(4 + body.len());
    out.extend_from_slice(&(body.len() as i32).to_be_bytes());
    out.extend_from_slice(body);
    writer.write_all(&out).await?;
    writer.flush().await
}
