//! The conformance suite every [`WalFs`] implementation runs in its tests ([`StdFs`] and
//! [`FaultyFs`] here, the engine's compio implementation there): the semantics the WAL relies on,
//! checked one by one. It panics, with a message naming the rule, on the first violation.
//!
//! [`StdFs`]: super::StdFs
//! [`FaultyFs`]: super::FaultyFs

use std::io::ErrorKind;
use std::path::Path;

use super::fs::{WalFile, WalFs};

/// Reads all of `f` from `pos` to its end, in reads of at most `chunk` bytes.
async fn read_to_end<T: WalFile>(f: &mut T, pos: u64, chunk: usize) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let mut buf = Vec::with_capacity(chunk);
        buf.extend_from_slice(b"kept");
        let (res, back) = f.read_at(buf, pos + out.len() as u64).await;
        let n = res.expect("read_at");
        assert!(
            back.starts_with(b"kept"),
            "read_at appends after the buffer's contents"
        );
        assert_eq!(back.len(), 4 + n, "read_at sets the length to what it read");
        if n == 0 {
            return out;
        }
        out.extend_from_slice(&back[4..]);
    }
}

/// Runs every check in `dir`, an empty directory that exists.
pub async fn check<F: WalFs>(fs: &F, dir: &Path) {
    let path_a = dir.join("a");
    let mut file = fs.create(&path_a).await.expect("create a new file");
    assert_eq!(
        fs.create(&path_a).await.err().map(|e| e.kind()),
        Some(ErrorKind::AlreadyExists),
        "create fails on an existing file"
    );
    assert!(
        read_to_end(&mut file, 0, 16).await.is_empty(),
        "a new file is empty"
    );

    // Writes hand the buffer back, extend the file, and fill gaps with zeros.
    let buf = b"hello".to_vec();
    let (res, back) = file.write_at(buf, 0).await;
    res.expect("write_at");
    assert_eq!(back, b"hello", "write_at hands the buffer back");
    let (res, _) = file.write_at(b"world".to_vec(), 8).await;
    res.expect("write_at past the end");
    assert_eq!(read_to_end(&mut file, 0, 3).await, b"hello\0\0\0world");
    assert_eq!(
        read_to_end(&mut file, 6, 64).await,
        b"\0\0world",
        "read_at from an offset"
    );
    assert!(
        read_to_end(&mut file, 100, 64).await.is_empty(),
        "read_at past the end is EOF"
    );
    let (res, back) = file.read_at(Vec::new(), 0).await;
    assert_eq!(
        (res.expect("read_at"), back.len()),
        (0, 0),
        "no spare capacity, no read"
    );
    let big: Vec<u8> = (0..200_000u32).map(|i| i as u8).collect();
    let (res, _) = file.write_at(big.clone(), 13).await;
    res.expect("large write_at");
    assert_eq!(
        &read_to_end(&mut file, 13, 65_536).await[..],
        &big[..],
        "large read back"
    );
    file.sync_data().await.expect("sync_data");

    let (res, back) = file.write_durable_at(b"!".to_vec(), 200_013).await;
    res.expect("write_durable_at");
    assert_eq!(back, b"!", "write_durable_at hands the buffer back");
    assert_eq!(
        read_to_end(&mut file, 200_010, 64).await,
        [&big[199_997..], b"!"].concat(),
        "write_durable_at appends like write_at"
    );

    file.set_len(5).await.expect("set_len shrinks");
    assert_eq!(read_to_end(&mut file, 0, 64).await, b"hello");
    file.set_len(7).await.expect("set_len extends");
    assert_eq!(read_to_end(&mut file, 0, 64).await, b"hello\0\0");
    drop(file);

    let mut file = fs.open(&path_a).await.expect("open an existing file");
    assert_eq!(
        read_to_end(&mut file, 0, 64).await,
        b"hello\0\0",
        "open sees the data"
    );
    let (res, _) = file.write_at(b"J".to_vec(), 0).await;
    res.expect("an opened file is writable");
    drop(file);
    assert_eq!(
        fs.open(&dir.join("missing")).await.err().map(|e| e.kind()),
        Some(ErrorKind::NotFound),
        "open fails on a missing file"
    );

    // Directories.
    let sub = dir.join("x").join("y");
    fs.create_dir_all(&sub).await.expect("create_dir_all");
    fs.create_dir_all(&sub)
        .await
        .expect("create_dir_all is idempotent");
    fs.create(&sub.join("f"))
        .await
        .expect("create in a new directory");
    let mut names = fs.list(dir).await.expect("list");
    names.sort();
    assert_eq!(names, ["a", "x"], "list names files and directories");
    assert_eq!(
        fs.list(&dir.join("nope")).await.err().map(|e| e.kind()),
        Some(ErrorKind::NotFound),
        "list fails on a missing directory"
    );
    fs.sync_dir(dir).await.expect("sync_dir");

    // Renames: a file, over a file, a directory with its contents.
    let path_b = dir.join("b");
    fs.rename(&path_a, &path_b).await.expect("rename a file");
    let mut file = fs.open(&path_b).await.expect("open the renamed file");
    assert_eq!(read_to_end(&mut file, 0, 64).await, b"Jello\0\0");
    drop(file);
    let path_c = dir.join("c");
    fs.create(&path_c).await.expect("create");
    fs.rename(&path_c, &path_b)
        .await
        .expect("rename over an existing file");
    let mut file = fs.open(&path_b).await.expect("open");
    assert!(
        read_to_end(&mut file, 0, 64).await.is_empty(),
        "rename replaced the target"
    );
    drop(file);
    let path_z = dir.join("z");
    fs.rename(&dir.join("x"), &path_z)
        .await
        .expect("rename a directory");
    fs.open(&path_z.join("y").join("f"))
        .await
        .expect("a renamed directory keeps its contents");
    let mut names = fs.list(dir).await.expect("list");
    names.sort();
    assert_eq!(names, ["b", "z"]);

    // Removals.
    fs.remove_file(&path_b).await.expect("remove_file");
    assert!(fs.open(&path_b).await.is_err(), "a removed file is gone");
    fs.remove_dir_all(&path_z).await.expect("remove_dir_all");
    assert!(
        fs.list(&path_z).await.is_err(),
        "a removed directory is gone"
    );
    assert!(fs.list(dir).await.expect("list").is_empty());
    fs.sync_dir(dir).await.expect("sync_dir");
}
