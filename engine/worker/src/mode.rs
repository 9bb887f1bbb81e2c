//! File modes for copies: an octal mode or `chmod` symbolic text such as
//! `u+x,g-w` or `a=rX`.

use anyhow::{Result, bail};

/// A mode change applied to each copied file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ModeChange {
    Absolute(u32),
    Symbolic(Vec<Clause>),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Clause {
    /// Mask of the permission classes the clause affects (`u`, `g`, `o`).
    who: u32,
    op: char,
    perms: String,
}

impl ModeChange {
    /// Parses octal digits (`0755`, `644`) or symbolic text.
    pub fn parse(text: &str) -> Result<ModeChange> {
        if !text.is_empty() && text.chars().all(|c| c.is_digit(8)) {
            let mode = u32::from_str_radix(text, 8).map_err(|_| invalid(text))?;
            if mode > 0o7777 {
                return Err(invalid(text));
            }
            return Ok(ModeChange::Absolute(mode));
        }
        let mut clauses = Vec::new();
        for part in text.split(',') {
            let op_at = part.find(['+', '-', '=']).ok_or_else(|| invalid(text))?;
            let (who_text, rest) = part.split_at(op_at);
            let mut who = 0;
            for c in who_text.chars() {
                who |= match c {
                    'u' => 0o4700,
                    'g' => 0o2070,
                    'o' => 0o1007,
                    'a' => 0o7777,
                    _ => return Err(invalid(text)),
                };
            }
            if who_text.is_empty() {
                who = 0o7777;
            }
            let op = rest.chars().next().expect("split at an operator");
            let perms = &rest[1..];
            if !perms.chars().all(|c| "rwxXst".contains(c)) {
                bail!("{}", invalid(text));
            }
            clauses.push(Clause {
                who,
                op,
                perms: perms.to_string(),
            });
        }
        Ok(ModeChange::Symbolic(clauses))
    }

    /// Returns the new permission bits of a file whose current bits are
    /// `mode`.
    pub fn apply(&self, mode: u32, is_dir: bool) -> u32 {
        let clauses = match self {
            ModeChange::Absolute(mode) => return *mode,
            ModeChange::Symbolic(clauses) => clauses,
        };
        let mut mode = mode & 0o7777;
        for clause in clauses {
            let any_exec = mode & 0o111 != 0;
            let mut bits = 0;
            for c in clause.perms.chars() {
                bits |= match c {
                    'r' => 0o444,
                    'w' => 0o222,
                    'x' => 0o111,
                    'X' if is_dir || any_exec => 0o111,
                    'X' => 0,
                    's' => 0o6000,
                    't' => 0o1000,
                    _ => 0,
                };
            }
            let bits = bits & clause.who;
            mode = match clause.op {
                '+' => mode | bits,
                '-' => mode & !bits,
                _ => (mode & !(clause.who & 0o7777)) | bits,
            };
        }
        mode
    }
}

fn invalid(text: &str) -> anyhow::Error {
    anyhow::anyhow!(
        "Invalid file mode `{text}`: use octal digits such as `0755` or symbolic text such as \
         `u+x,g-w`"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn octal_and_symbolic() {
        assert_eq!(
            ModeChange::parse("0755").unwrap().apply(0o600, false),
            0o755
        );
        let change = ModeChange::parse("u+x,g-w").unwrap();
        assert_eq!(change.apply(0o664, false), 0o744);
        assert_eq!(ModeChange::parse("a=rX").unwrap().apply(0o640, true), 0o555);
        assert_eq!(
            ModeChange::parse("a=rX").unwrap().apply(0o640, false),
            0o444
        );
        assert_eq!(ModeChange::parse("+x").unwrap().apply(0o600, false), 0o711);
        assert_eq!(ModeChange::parse("o=").unwrap().apply(0o777, false), 0o770);
    }

    #[test]
    fn invalid_text_is_named() {
        let error = ModeChange::parse("u+q").unwrap_err();
        assert!(error.to_string().contains("`u+q`"), "{error}");
        assert!(ModeChange::parse("99999").is_err());
        assert!(ModeChange::parse("z+x").is_err());
    }
}
