//! Why a text file cannot be read as the UTF-8, comma-separated text the readers expect, said
//! with the fix: spreadsheets save "Unicode text" as UTF-16, "CSV" as Windows-1252, and in
//! European locales separate fields with ';' (decimal commas). Shared by the grid reader and
//! the "no record could be read" hint for logs, so both say the same thing.

use std::path::Path;

/// `dir/name.ext` -> `dir/name-<tag>.ext`, for the output of a suggested conversion command.
pub fn sibling(path: &Path, tag: &str) -> String {
    let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "file".into());
    let ext = path.extension().map(|e| format!(".{}", e.to_string_lossy())).unwrap_or_default();
    path.with_file_name(format!("{stem}-{tag}{ext}")).display().to_string()
}

/// `(line, message)` when `bytes` (a whole file or its head) are not UTF-8: UTF-16 by its
/// byte-order mark or NUL pattern (line 0: the whole file), else the first invalid byte's line
/// as Latin-1 / Windows-1252. A head cut inside a multi-byte character is not an error.
pub fn encoding_problem(bytes: &[u8], path: &Path) -> Option<(u64, String)> {
    let out = sibling(path, "utf8");
    let name = path.display();
    if let Some((looks, from)) = utf16_kind(bytes) {
        return Some((
            0,
            format!("not UTF-8 text: it looks like {looks}; convert it: iconv -f {from} -t UTF-8 {name} > {out}"),
        ));
    }
    let e = std::str::from_utf8(bytes).err()?;
    e.error_len()?; // None: the text only ends inside a character (a cut head)
    let at = e.valid_up_to();
    let line = bytes[..at].iter().filter(|&&c| c == b'\n').count() as u64 + 1;
    Some((
        line,
        format!(
            "not UTF-8 text: byte 0x{:02X} looks like Latin-1 / Windows-1252 (a spreadsheet's CSV save); \
             convert it: iconv -f WINDOWS-1252 -t UTF-8 {name} > {out}",
            bytes[at]
        ),
    ))
}

/// The message for a header that is one ';'-separated field; None when it is not that.
pub fn semicolon_problem(header: &str, path: &Path, what: &str) -> Option<String> {
    if header.contains(',') || !header.contains(';') {
        return None;
    }
    Some(format!(
        "fields are separated by ';' (a spreadsheet's CSV in a European locale), but {what} are \
         ','-separated with '.' decimal points: re-export it with ',' as separator, or convert it with \
         sed -e 's/,/./g' -e 's/;/,/g' {} > {} (that also turns decimal commas into points; \
         check that no text field holds ',' or ';')",
        path.display(),
        sibling(path, "comma")
    ))
}

/// UTF-16 by its byte-order mark, or, without one, by NUL bytes in every other position (ASCII
/// text in UTF-16): (what it looks like, iconv's name for it).
fn utf16_kind(b: &[u8]) -> Option<(&'static str, &'static str)> {
    if b.starts_with(&[0xFF, 0xFE]) {
        return Some(("UTF-16 LE (byte-order mark FF FE)", "UTF-16"));
    }
    if b.starts_with(&[0xFE, 0xFF]) {
        return Some(("UTF-16 BE (byte-order mark FE FF)", "UTF-16"));
    }
    let head = &b[..b.len().min(4096)];
    let pairs = head.len() / 2;
    if pairs < 2 {
        return None;
    }
    let even = head.iter().step_by(2).filter(|&&c| c == 0).count();
    let odd = head.iter().skip(1).step_by(2).filter(|&&c| c == 0).count();
    if odd * 2 > pairs && even * 8 < pairs {
        Some(("UTF-16 LE without a byte-order mark (every other byte is NUL)", "UTF-16LE"))
    } else if even * 2 > pairs && odd * 8 < pairs {
        Some(("UTF-16 BE without a byte-order mark (every other byte is NUL)", "UTF-16BE"))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodings_and_separators() {
        let p = Path::new("d/logs.csv");
        let u16: Vec<u8> = "ts,model\n".encode_utf16().flat_map(|c| c.to_le_bytes()).collect();
        let (line, msg) = encoding_problem(&u16, p).unwrap();
        assert_eq!(line, 0);
        assert!(msg.contains("UTF-16 LE without a byte-order mark") && msg.contains("d/logs-utf8.csv"), "{msg}");
        let (line, msg) = encoding_problem(b"ts,model\nx,caf\xe9\n", p).unwrap();
        assert_eq!(line, 2);
        assert!(msg.contains("byte 0xE9 looks like Latin-1"), "{msg}");
        assert!(encoding_problem("ts,model\nx,caf\u{e9}".as_bytes(), p).is_none());
        assert!(encoding_problem(&"x,caf\u{e9}".as_bytes()[..6], p).is_none(), "a head cut mid-character is fine");
        assert!(semicolon_problem("ts;model", p, "logs").unwrap().contains("d/logs-comma.csv"));
        assert!(semicolon_problem("ts,model", p, "logs").is_none());
        assert!(semicolon_problem("ts", p, "logs").is_none());
    }
}
