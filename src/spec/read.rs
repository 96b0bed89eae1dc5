//! Reading the files a stack names: regular files only, within a size limit, never more than
//! that limit into memory, and never blocking on a FIFO or a device.

use std::fmt;
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// The most any one file of a stack may hold: stack and values files, `.env`, env files,
/// configs and secrets. Real ones are kilobytes; the YAML budget is the same.
pub const MAX_FILE_BYTES: u64 = 16 << 20;

/// Why a file could not be read.
#[derive(Debug)]
pub enum ReadError {
    Missing,
    /// A directory, FIFO, socket or device.
    NotAFile(&'static str),
    TooBig { bytes: u64 },
    NotUtf8,
    Io(std::io::Error),
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadError::Missing => f.write_str("it does not exist"),
            ReadError::NotAFile(kind) => write!(f, "it is a {kind}, not a regular file"),
            ReadError::TooBig { bytes } => write!(f, "it holds {bytes} bytes, over the limit of {MAX_FILE_BYTES}"),
            ReadError::NotUtf8 => f.write_str("it is not UTF-8 text"),
            ReadError::Io(e) => write!(f, "{e}"),
        }
    }
}

/// The file's bytes.
pub fn bytes(path: &Path) -> Result<Vec<u8>, ReadError> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        // A FIFO opened for reading blocks until a writer comes; non-blocking, the type check
        // below refuses it first.
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| if e.kind() == std::io::ErrorKind::NotFound { ReadError::Missing } else { ReadError::Io(e) })?;
    let metadata = file.metadata().map_err(ReadError::Io)?;
    let kind = metadata.file_type();
    if !kind.is_file() {
        use std::os::unix::fs::FileTypeExt;
        return Err(ReadError::NotAFile(if kind.is_dir() {
            "directory"
        } else if kind.is_fifo() {
            "FIFO"
        } else if kind.is_socket() {
            "socket"
        } else {
            "device"
        }));
    }
    if metadata.len() > MAX_FILE_BYTES {
        return Err(ReadError::TooBig { bytes: metadata.len() });
    }
    let mut content = Vec::with_capacity(metadata.len() as usize);
    file.take(MAX_FILE_BYTES + 1).read_to_end(&mut content).map_err(ReadError::Io)?;
    if content.len() as u64 > MAX_FILE_BYTES {
        return Err(ReadError::TooBig { bytes: content.len() as u64 });
    }
    Ok(content)
}

/// The file as text.
pub fn text(path: &Path) -> Result<String, ReadError> {
    String::from_utf8(bytes(path)?).map_err(|_| ReadError::NotUtf8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fifo_a_directory_and_a_huge_file_are_refused_without_blocking_or_reading() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let c_path = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: mkfifo reads a NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
        assert!(matches!(bytes(&fifo), Err(ReadError::NotAFile("FIFO"))));
        assert!(matches!(bytes(dir.path()), Err(ReadError::NotAFile("directory"))));
        let huge = dir.path().join("huge");
        std::fs::File::create(&huge).unwrap().set_len(3 << 30).unwrap();
        assert!(matches!(bytes(&huge), Err(ReadError::TooBig { bytes }) if bytes == 3 << 30));
        assert!(matches!(bytes(&dir.path().join("none")), Err(ReadError::Missing)));
        std::fs::write(dir.path().join("latin1"), [0xe9]).unwrap();
        assert!(matches!(text(&dir.path().join("latin1")), Err(ReadError::NotUtf8)));
    }
}
