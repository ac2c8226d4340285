//! The screen language's lexer, parser and printer.
//!
//! A hand-written Pratt parser rather than a parser-combinator crate (winnow, chumsky, pest): the grammar
//! is a dozen rules, every token keeps its exact byte span for the caret in error messages, and the
//! library stays free of another dependency and its compile time. Binary operators are parsed by binding
//! power (`or` < `and` < `not` < comparisons < `+ -` < `* /` < unary minus < `x[k]`).
//!
//! ```text
//! expr     := expr "or" expr | expr "and" expr | "not" expr | compare
//! compare  := sum (("<" | "<=" | ">" | ">=" | "==" | "!=") sum
//!                 | "between" sum "and" sum
//!                 | "not"? "in" "(" literal ("," literal)* ")")?
//! sum      := sum ("+" | "-") sum | sum ("*" | "/") sum | "-" sum | postfix
//! postfix  := primary ("[" integer "]")?
//! primary  := number | string | name | name "(" (expr ("," expr)*)? ")" | "(" expr ")"
//! ```

use std::fmt;

use super::ScreenError;

/// A byte range of the source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Span {
    /// First byte.
    pub start: usize,
    /// One past the last byte.
    pub end: usize,
}

impl Span {
    fn new(start: usize, end: usize) -> Self {
        Self { start, end }
    }

    fn to(self, other: Span) -> Span {
        Span::new(self.start.min(other.start), self.end.max(other.end))
    }
}

/// Arithmetic operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arith {
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/`
    Div,
}

/// Comparison operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmp {
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `==`
    Eq,
    /// `!=`
    Ne,
}

impl Cmp {
    fn as_str(self) -> &'static str {
        match self {
            Self::Lt => "<",
            Self::Le => "<=",
            Self::Gt => ">",
            Self::Ge => ">=",
            Self::Eq => "==",
            Self::Ne => "!=",
        }
    }
}

/// A parsed expression. Spans point into the source for error messages; [`Expr::same`] compares shapes.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// A number.
    Num(f64, Span),
    /// A quoted string.
    Str(String, Span),
    /// A field, `back` sessions ago (`close[1]`).
    Field {
        /// Its name.
        name: String,
        /// Sessions back (0: the last session).
        back: u32,
        /// Where it is.
        span: Span,
    },
    /// `-x`.
    Neg(Box<Expr>, Span),
    /// `a + b` and the like.
    Arith(Arith, Box<Expr>, Box<Expr>, Span),
    /// `a < b` and the like.
    Cmp(Cmp, Box<Expr>, Box<Expr>, Span),
    /// `x between lo and hi` (inclusive).
    Between(Box<Expr>, Box<Expr>, Box<Expr>, Span),
    /// `x in (a, b)` or `x not in (a, b)`.
    In {
        /// The value looked up.
        x: Box<Expr>,
        /// The literals.
        list: Vec<Expr>,
        /// `not in`.
        negated: bool,
        /// Where it is.
        span: Span,
    },
    /// `a and b`.
    And(Box<Expr>, Box<Expr>, Span),
    /// `a or b`.
    Or(Box<Expr>, Box<Expr>, Span),
    /// `not a`.
    Not(Box<Expr>, Span),
    /// `name(args)`.
    Call {
        /// The function.
        name: String,
        /// Its arguments.
        args: Vec<Expr>,
        /// Where it is.
        span: Span,
    },
}

impl Expr {
    /// Where this expression is in the source.
    pub fn span(&self) -> Span {
        match self {
            Self::Num(_, s) | Self::Str(_, s) | Self::Neg(_, s) => *s,
            Self::Field { span, .. } | Self::In { span, .. } | Self::Call { span, .. } => *span,
            Self::Arith(.., s)
            | Self::Cmp(.., s)
            | Self::Between(.., s)
            | Self::And(.., s)
            | Self::Or(.., s)
            | Self::Not(_, s) => *s,
        }
    }

    /// True when both have the same shape and values, whatever their spans.
    pub fn same(&self, other: &Expr) -> bool {
        use Expr as E;
        let all = |a: &[Expr], b: &[Expr]| a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.same(y));
        match (self, other) {
            (E::Num(a, _), E::Num(b, _)) => a == b,
            (E::Str(a, _), E::Str(b, _)) => a == b,
            (E::Field { name: a, back: x, .. }, E::Field { name: b, back: y, .. }) => a == b && x == y,
            (E::Neg(a, _), E::Neg(b, _)) | (E::Not(a, _), E::Not(b, _)) => a.same(b),
            (E::Arith(o, a, b, _), E::Arith(p, c, d, _)) => o == p && a.same(c) && b.same(d),
            (E::Cmp(o, a, b, _), E::Cmp(p, c, d, _)) => o == p && a.same(c) && b.same(d),
            (E::And(a, b, _), E::And(c, d, _)) | (E::Or(a, b, _), E::Or(c, d, _)) => a.same(c) && b.same(d),
            (E::Between(a, b, c, _), E::Between(d, e, f, _)) => a.same(d) && b.same(e) && c.same(f),
            (
                E::In {
                    x: a,
                    list: l,
                    negated: n,
                    ..
                },
                E::In {
                    x: b,
                    list: m,
                    negated: o,
                    ..
                },
            ) => n == o && a.same(b) && all(l, m),
            (E::Call { name: a, args: x, .. }, E::Call { name: b, args: y, .. }) => a == b && all(x, y),
            _ => false,
        }
    }
}

/// Prints the expression fully parenthesised: parsing the output gives the same expression back.
impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Num(v, _) => write!(f, "{v}"),
            Self::Str(s, _) => {
                f.write_str("\"")?;
                for c in s.chars() {
                    match c {
                        '"' => f.write_str("\\\"")?,
                        '\\' => f.write_str("\\\\")?,
                        c => write!(f, "{c}")?,
                    }
                }
                f.write_str("\"")
            }
            Self::Field { name, back: 0, .. } => f.write_str(name),
            Self::Field { name, back, .. } => write!(f, "{name}[{back}]"),
            Self::Neg(x, _) => write!(f, "(-{x})"),
            Self::Arith(op, a, b, _) => {
                let op = match op {
                    Arith::Add => "+",
                    Arith::Sub => "-",
                    Arith::Mul => "*",
                    Arith::Div => "/",
                };
                write!(f, "({a} {op} {b})")
            }
            Self::Cmp(op, a, b, _) => write!(f, "({a} {} {b})", op.as_str()),
            Self::Between(x, lo, hi, _) => write!(f, "({x} between {lo} and {hi})"),
            Self::In { x, list, negated, .. } => {
                write!(f, "({x} {}in (", if *negated { "not " } else { "" })?;
                for (i, v) in list.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    // A list holds literals: a negative number is written bare.
                    match v {
                        Self::Neg(x, _) => write!(f, "-{x}")?,
                        v => write!(f, "{v}")?,
                    }
                }
                f.write_str("))")
            }
            Self::And(a, b, _) => write!(f, "({a} and {b})"),
            Self::Or(a, b, _) => write!(f, "({a} or {b})"),
            Self::Not(x, _) => write!(f, "(not {x})"),
            Self::Call { name, args, .. } => {
                write!(f, "{name}(")?;
                for (i, a) in args.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{a}")?;
                }
                f.write_str(")")
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Num(f64),
    Str(String),
    Name(String),
    Op(&'static str),
    End,
}

#[derive(Debug, Clone)]
struct Token {
    tok: Tok,
    span: Span,
}

/// The longest expression accepted, in bytes: screens are one line; this bounds parse time and depth.
pub const MAX_SOURCE: usize = 4096;
/// The deepest expression tree accepted, counted in levels from every cause: operators (a chain
/// `a + b + c` is two levels), functions, parentheses, `not` and unary minus. Every pass over the tree
/// (checking, evaluating, printing, dropping) recurses once per level, so this bound, checked while
/// parsing, is what keeps any input from overflowing a thread's stack.
pub const MAX_DEPTH: usize = 64;
/// The most values (numbers, strings, fields and list items) one expression may hold.
pub const MAX_TERMS: usize = 256;

fn lex(src: &str) -> Result<Vec<Token>, ScreenError> {
    let bytes = src.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        let start = i;
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        if c.is_ascii_digit() || (c == b'.' && bytes.get(i + 1).is_some_and(u8::is_ascii_digit)) {
            while i < bytes.len() && (bytes[i].is_ascii_digit() || bytes[i] == b'.') {
                i += 1;
            }
            if i < bytes.len() && (bytes[i] == b'e' || bytes[i] == b'E') {
                let mut j = i + 1;
                if j < bytes.len() && (bytes[j] == b'+' || bytes[j] == b'-') {
                    j += 1;
                }
                if j < bytes.len() && bytes[j].is_ascii_digit() {
                    i = j;
                    while i < bytes.len() && bytes[i].is_ascii_digit() {
                        i += 1;
                    }
                }
            }
            let text = &src[start..i];
            let v: f64 = text.parse().ok().filter(|v: &f64| v.is_finite()).ok_or_else(|| {
                ScreenError::at(src, Span::new(start, i), format!("\"{text}\" is not a number"))
            })?;
            out.push(Token {
                tok: Tok::Num(v),
                span: Span::new(start, i),
            });
            continue;
        }
        if c.is_ascii_alphabetic() || c == b'_' {
            while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                i += 1;
            }
            out.push(Token {
                tok: Tok::Name(src[start..i].to_ascii_lowercase()),
                span: Span::new(start, i),
            });
            continue;
        }
        if c == b'"' || c == b'\'' {
            let quote = c;
            let mut text = String::new();
            i += 1;
            let mut closed = false;
            while i < bytes.len() {
                let ch = src[i..].chars().next().unwrap_or('\0');
                if ch as u32 == u32::from(quote) {
                    i += 1;
                    closed = true;
                    break;
                }
                if ch == '\\' && i + 1 < bytes.len() {
                    let next = src[i + 1..].chars().next().unwrap_or('\0');
                    text.push(next);
                    i += 1 + next.len_utf8();
                    continue;
                }
                text.push(ch);
                i += ch.len_utf8();
            }
            if !closed {
                return Err(ScreenError::at(
                    src,
                    Span::new(start, bytes.len()),
                    "this string has no closing quote".to_owned(),
                ));
            }
            out.push(Token {
                tok: Tok::Str(text),
                span: Span::new(start, i),
            });
            continue;
        }
        let two = src.get(i..i + 2).unwrap_or("");
        let op: Option<&'static str> = match two {
            "<=" => Some("<="),
            ">=" => Some(">="),
            "==" => Some("=="),
            "!=" => Some("!="),
            _ => None,
        };
        if two == "&&" || two == "||" {
            out.push(Token {
                tok: Tok::Name(if two == "&&" { "and" } else { "or" }.to_owned()),
                span: Span::new(i, i + 2),
            });
            i += 2;
            continue;
        }
        if let Some(op) = op {
            out.push(Token {
                tok: Tok::Op(op),
                span: Span::new(i, i + 2),
            });
            i += 2;
            continue;
        }
        let op: Option<&'static str> = match c {
            b'<' => Some("<"),
            b'>' => Some(">"),
            b'=' => Some("=="),
            b'+' => Some("+"),
            b'-' => Some("-"),
            b'*' => Some("*"),
            b'/' => Some("/"),
            b'(' => Some("("),
            b')' => Some(")"),
            b'[' => Some("["),
            b']' => Some("]"),
            b',' => Some(","),
            _ => None,
        };
        match op {
            Some(op) => {
                out.push(Token {
                    tok: Tok::Op(op),
                    span: Span::new(i, i + 1),
                });
                i += 1;
            }
            None => {
                let ch = src[i..].chars().next().unwrap_or('?');
                return Err(ScreenError::at(
                    src,
                    Span::new(i, i + ch.len_utf8()),
                    format!("unexpected character '{ch}'"),
                ));
            }
        }
    }
    out.push(Token {
        tok: Tok::End,
        span: Span::new(bytes.len(), bytes.len()),
    });
    Ok(out)
}

/// Parses `src` into an expression (names are lower-cased; nothing is checked against fields yet).
pub fn parse(src: &str) -> Result<Expr, ScreenError> {
    if src.len() > MAX_SOURCE {
        return Err(ScreenError::at(
            src,
            Span::new(MAX_SOURCE, src.len()),
            format!("the expression is longer than {MAX_SOURCE} bytes"),
        ));
    }
    let tokens = lex(src)?;
    if tokens.len() == 1 {
        return Err(ScreenError::at(
            src,
            Span::new(0, src.len()),
            "the expression is empty; write a condition such as rsi_14 < 30".to_owned(),
        ));
    }
    let mut p = Parser {
        src,
        tokens,
        pos: 0,
        depth: 0,
        terms: 0,
    };
    let (e, _) = p.expr(0)?;
    let t = p.peek();
    if t.tok != Tok::End {
        let what = describe(&t.tok);
        return Err(ScreenError::at(
            src,
            t.span,
            format!("unexpected {what}: expected an operator such as and, or, <, + or the end"),
        ));
    }
    Ok(e)
}

fn describe(t: &Tok) -> String {
    match t {
        Tok::Num(v) => format!("number {v}"),
        Tok::Str(s) => format!("string \"{s}\""),
        Tok::Name(n) => format!("\"{n}\""),
        Tok::Op(o) => format!("\"{o}\""),
        Tok::End => "end of the expression".to_owned(),
    }
}

struct Parser<'a> {
    src: &'a str,
    tokens: Vec<Token>,
    pos: usize,
    /// How deep the parser's own recursion is (parentheses, prefixes, right operands).
    depth: usize,
    /// Values read so far.
    terms: usize,
}

/// An expression with the height of its tree (a value is 1).
type Built = (Expr, usize);

/// Binding powers (left, right) of the infix operators.
fn infix(t: &Tok) -> Option<(u8, u8)> {
    Some(match t {
        Tok::Name(n) if n == "or" => (1, 2),
        Tok::Name(n) if n == "and" => (3, 4),
        Tok::Op("<" | "<=" | ">" | ">=" | "==" | "!=") => (7, 8),
        Tok::Name(n) if n == "between" || n == "in" || n == "not" => (7, 8),
        Tok::Op("+" | "-") => (9, 10),
        Tok::Op("*" | "/") => (11, 12),
        _ => return None,
    })
}

impl Parser<'_> {
    fn peek(&self) -> &Token {
        &self.tokens[self.pos]
    }

    fn next(&mut self) -> Token {
        let t = self.tokens[self.pos].clone();
        if self.pos + 1 < self.tokens.len() {
            self.pos += 1;
        }
        t
    }

    fn err(&self, span: Span, msg: String) -> ScreenError {
        ScreenError::at(self.src, span, msg)
    }

    fn expect(&mut self, op: &'static str) -> Result<Span, ScreenError> {
        let t = self.next();
        if t.tok == Tok::Op(op) {
            Ok(t.span)
        } else {
            Err(self.err(t.span, format!("expected \"{op}\", found {}", describe(&t.tok))))
        }
    }

    /// The rest of `x between lo and hi`, after `between`. Kept out of [`Parser::expr`], as is
    /// [`Parser::list`], so the frame that recursion repeats stays small.
    #[inline(never)]
    fn between(&mut self, lhs: Expr, height: usize) -> Result<Built, ScreenError> {
        // The bounds are sums: the `and` between them belongs to `between`.
        let (lo, h_lo) = self.expr(9)?;
        let and = self.next();
        if !matches!(&and.tok, Tok::Name(n) if n == "and") {
            return Err(self.err(
                and.span,
                format!(
                    "expected \"and\" in x between low and high, found {}",
                    describe(&and.tok)
                ),
            ));
        }
        let (hi, h_hi) = self.expr(9)?;
        let span = lhs.span().to(hi.span());
        let height = self.level(height.max(h_lo).max(h_hi), span)?;
        Ok((
            Expr::Between(Box::new(lhs), Box::new(lo), Box::new(hi), span),
            height,
        ))
    }

    /// The rest of `x in (…)` or `x not in (…)`, after `in` or `not`.
    #[inline(never)]
    fn list(&mut self, lhs: Expr, height: usize, negated: bool) -> Result<Built, ScreenError> {
        if negated {
            let t = self.next();
            if !matches!(&t.tok, Tok::Name(n) if n == "in") {
                return Err(self.err(t.span, "expected \"in\" after \"not\" here".to_owned()));
            }
        }
        self.expect("(")?;
        let mut list = Vec::new();
        loop {
            list.push(self.literal()?);
            let t = self.next();
            match t.tok {
                Tok::Op(",") => continue,
                Tok::Op(")") => {
                    let span = lhs.span().to(t.span);
                    // A list item is a value, or a minus over one.
                    let height = self.level(height.max(2), span)?;
                    let x = Box::new(lhs);
                    return Ok((
                        Expr::In {
                            x,
                            list,
                            negated,
                            span,
                        },
                        height,
                    ));
                }
                _ => {
                    return Err(self.err(
                        t.span,
                        format!("expected \",\" or \")\" in the list, found {}", describe(&t.tok)),
                    ));
                }
            }
        }
    }

    /// The error for an expression nested past [`MAX_DEPTH`].
    #[cold]
    #[inline(never)]
    fn too_deep(&self, span: Span) -> ScreenError {
        self.err(
            span,
            format!(
                "the expression is more than {MAX_DEPTH} levels deep (each operator, function, \
                 parenthesis and not is a level): split it or use fewer terms"
            ),
        )
    }

    /// A field (`close`, `close[1]`) or a call (`abs(x)`), after its name.
    #[inline(never)]
    fn named(&mut self, name: String, at: Span) -> Result<Built, ScreenError> {
        if self.peek().tok == Tok::Op("(") {
            self.next();
            let mut args = Vec::new();
            if self.peek().tok == Tok::Op(")") {
                let close = self.next().span;
                let span = at.to(close);
                self.term(span)?;
                return Ok((Expr::Call { name, args, span }, 1));
            }
            let mut below = 0;
            loop {
                let (arg, h) = self.expr(0)?;
                below = below.max(h);
                args.push(arg);
                let sep = self.next();
                match sep.tok {
                    Tok::Op(",") => continue,
                    Tok::Op(")") => {
                        let span = at.to(sep.span);
                        let height = self.level(below, span)?;
                        return Ok((Expr::Call { name, args, span }, height));
                    }
                    other => {
                        return Err(self.err(
                            sep.span,
                            format!(
                                "expected \",\" or \")\" after an argument, found {}",
                                describe(&other)
                            ),
                        ));
                    }
                }
            }
        }
        self.term(at)?;
        let mut back = 0;
        let mut span = at;
        if self.peek().tok == Tok::Op("[") {
            self.next();
            let k = self.next();
            let Tok::Num(v) = k.tok else {
                return Err(self.err(
                    k.span,
                    format!(
                        "expected a whole number of sessions back, found {}",
                        describe(&k.tok)
                    ),
                ));
            };
            if v.fract() != 0.0 || !(0.0..=1e6).contains(&v) {
                return Err(self.err(k.span, format!("{v} is not a whole number of sessions")));
            }
            back = v as u32;
            span = span.to(self.expect("]")?);
        }
        Ok((Expr::Field { name, back, span }, 1))
    }

    /// Checks the height of a node about to be built over children of height `below`.
    fn level(&self, below: usize, span: Span) -> Result<usize, ScreenError> {
        let height = below + 1;
        if height > MAX_DEPTH {
            return Err(self.too_deep(span));
        }
        Ok(height)
    }

    /// Counts one value.
    fn term(&mut self, span: Span) -> Result<(), ScreenError> {
        self.terms += 1;
        if self.terms > MAX_TERMS {
            return Err(self.err(
                span,
                format!("the expression holds more than {MAX_TERMS} values: use fewer terms"),
            ));
        }
        Ok(())
    }

    fn expr(&mut self, min_bp: u8) -> Result<Built, ScreenError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.too_deep(self.peek().span));
        }
        let (mut lhs, mut height) = self.prefix()?;
        loop {
            let t = self.peek().clone();
            let Some((l_bp, r_bp)) = infix(&t.tok) else {
                break;
            };
            if l_bp < min_bp {
                break;
            }
            // Comparisons do not chain: `a < b < c` is an error, not `(a < b) < c`.
            if l_bp == 7 && matches!(lhs, Expr::Cmp(..) | Expr::Between(..) | Expr::In { .. }) && min_bp <= 7
            {
                return Err(self.err(
                    t.span,
                    "comparisons do not chain: write a < b and b < c (or b between a and c)".to_owned(),
                ));
            }
            self.next();
            (lhs, height) = match t.tok {
                Tok::Name(ref n) if n == "or" || n == "and" => {
                    let or = n == "or";
                    let (rhs, h) = self.expr(r_bp)?;
                    let span = lhs.span().to(rhs.span());
                    let height = self.level(height.max(h), span)?;
                    let (l, r) = (Box::new(lhs), Box::new(rhs));
                    let e = if or {
                        Expr::Or(l, r, span)
                    } else {
                        Expr::And(l, r, span)
                    };
                    (e, height)
                }
                Tok::Name(ref n) if n == "between" => self.between(lhs, height)?,
                Tok::Name(ref n) if n == "in" || n == "not" => self.list(lhs, height, n == "not")?,
                Tok::Op(op) => {
                    let (rhs, h) = self.expr(r_bp)?;
                    let span = lhs.span().to(rhs.span());
                    let height = self.level(height.max(h), span)?;
                    let (l, r) = (Box::new(lhs), Box::new(rhs));
                    let e = match op {
                        "+" => Expr::Arith(Arith::Add, l, r, span),
                        "-" => Expr::Arith(Arith::Sub, l, r, span),
                        "*" => Expr::Arith(Arith::Mul, l, r, span),
                        "/" => Expr::Arith(Arith::Div, l, r, span),
                        "<" => Expr::Cmp(Cmp::Lt, l, r, span),
                        "<=" => Expr::Cmp(Cmp::Le, l, r, span),
                        ">" => Expr::Cmp(Cmp::Gt, l, r, span),
                        ">=" => Expr::Cmp(Cmp::Ge, l, r, span),
                        "==" => Expr::Cmp(Cmp::Eq, l, r, span),
                        _ => Expr::Cmp(Cmp::Ne, l, r, span),
                    };
                    (e, height)
                }
                _ => unreachable!("infix() only returns operators"),
            };
        }
        self.depth -= 1;
        Ok((lhs, height))
    }

    /// A number or string in an `in (…)` list (a leading minus allowed).
    fn literal(&mut self) -> Result<Expr, ScreenError> {
        let t = self.next();
        self.term(t.span)?;
        match t.tok {
            Tok::Num(v) => Ok(Expr::Num(v, t.span)),
            Tok::Str(s) => Ok(Expr::Str(s, t.span)),
            Tok::Op("-") => {
                let n = self.next();
                match n.tok {
                    Tok::Num(v) => Ok(Expr::Neg(Box::new(Expr::Num(v, n.span)), t.span.to(n.span))),
                    other => Err(self.err(
                        n.span,
                        format!("expected a number after \"-\", found {}", describe(&other)),
                    )),
                }
            }
            other => Err(self.err(
                t.span,
                format!(
                    "a list holds numbers or quoted strings, found {}",
                    describe(&other)
                ),
            )),
        }
    }

    fn prefix(&mut self) -> Result<Built, ScreenError> {
        let t = self.next();
        match t.tok {
            Tok::Num(v) => {
                self.term(t.span)?;
                Ok((Expr::Num(v, t.span), 1))
            }
            Tok::Str(s) => {
                self.term(t.span)?;
                Ok((Expr::Str(s, t.span), 1))
            }
            Tok::Op("-") => {
                let (x, h) = self.expr(13)?;
                let span = t.span.to(x.span());
                let height = self.level(h, span)?;
                Ok((Expr::Neg(Box::new(x), span), height))
            }
            Tok::Op("(") => {
                let (e, h) = self.expr(0)?;
                let close = self.expect(")")?;
                // The span of a parenthesised expression covers its parentheses; the tree gains no node.
                Ok((respan(e, t.span.to(close)), h))
            }
            Tok::Name(n) if n == "not" => {
                let (x, h) = self.expr(5)?;
                let span = t.span.to(x.span());
                let height = self.level(h, span)?;
                Ok((Expr::Not(Box::new(x), span), height))
            }
            Tok::Name(n) if matches!(n.as_str(), "and" | "or" | "between" | "in") => Err(self.err(
                t.span,
                format!("\"{n}\" needs something before it: a condition such as rsi_14 < 30"),
            )),
            Tok::Name(name) => self.named(name, t.span),
            Tok::End => Err(self.err(
                t.span,
                "the expression ends too early: a value or condition is missing".to_owned(),
            )),
            other => Err(self.err(t.span, format!("unexpected {}", describe(&other)))),
        }
    }
}

/// The same expression with a wider span (for parentheses).
fn respan(e: Expr, span: Span) -> Expr {
    match e {
        Expr::Num(v, _) => Expr::Num(v, span),
        Expr::Str(s, _) => Expr::Str(s, span),
        Expr::Field { name, back, .. } => Expr::Field { name, back, span },
        Expr::Neg(x, _) => Expr::Neg(x, span),
        Expr::Arith(o, a, b, _) => Expr::Arith(o, a, b, span),
        Expr::Cmp(o, a, b, _) => Expr::Cmp(o, a, b, span),
        Expr::Between(a, b, c, _) => Expr::Between(a, b, c, span),
        Expr::In { x, list, negated, .. } => Expr::In {
            x,
            list,
            negated,
            span,
        },
        Expr::And(a, b, _) => Expr::And(a, b, span),
        Expr::Or(a, b, _) => Expr::Or(a, b, span),
        Expr::Not(x, _) => Expr::Not(x, span),
        Expr::Call { name, args, .. } => Expr::Call { name, args, span },
    }
}
