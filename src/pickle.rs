//! The subset of Python's pickle that Swift's files use: `.builder` files (a protocol-2
//! pickle of a dict, tables as `array.array`) and object metadata xattrs (a protocol-2 pickle
//! of a dict of `bytes`).
//!
//! # Design
//!
//! A pickle is a program for a small stack machine. Python objects are identified by
//! reference: the memo lets a later opcode fetch an object built earlier, and containers are
//! mutated after they are memoized (`EMPTY_LIST`, `BINPUT`, … `APPENDS`). A plain tree can
//! therefore not be built opcode by opcode. The reader runs the machine over an *arena*:
//! containers, instances and memoized scalars live in the arena and the stack and memo hold
//! cheap handles to them. When `STOP` is reached the arena is turned into a [`Value`] tree:
//! a mutable object (list, dict, array, instance) referenced from more than one place
//! becomes one [`Value::Shared`] whose `Arc` every place holds, so identity survives (the
//! device dicts Swift lists both in `devs` and in `_remove_devs`), and so a hostile pickle
//! that references one big list a million times costs a million pointers, not a million
//! copies. Immutable values referenced twice are copied, within a budget proportional to
//! the input. Recursive structures (a list containing itself) are refused: nothing Swift
//! writes has them, and a tree cannot hold them.
//!
//! The writer emits protocol 2 the way CPython's pickler does: every string, tuple, list,
//! dict and global is memoized, a string or global written before is fetched with `BINGET`,
//! containers are filled in batches of 1000, `bytes` go through `_codecs.encode` (what
//! Python 3 emits below protocol 3, and what Swift's object server looks for to tell py3
//! metadata from py2), arrays through `array.array(typecode, list)`. A [`Value::Shared`]
//! written twice is written once and fetched with `BINGET` afterwards.
//!
//! # Limits
//!
//! The reader never panics and never allocates more than a small multiple of the input:
//! every length is checked against the bytes that remain before anything is allocated,
//! nesting is limited to [`MAX_DEPTH`], and copying shared immutable values stops at a
//! budget. Errors name the byte offset and the opcode.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

/// Deepest nesting of containers the reader accepts (Python's own limit is about 1000).
pub const MAX_DEPTH: usize = 500;

/// A Python value as pickles carry it.
#[derive(Clone, Debug)]
pub enum Value {
    None,
    Bool(bool),
    Int(i64),
    /// An int outside `i64`: little-endian two's complement bytes, as `LONG1` carries them.
    BigInt(Vec<u8>),
    Float(f64),
    Str(String),
    Bytes(Vec<u8>),
    List(Vec<Value>),
    Tuple(Vec<Value>),
    /// Insertion order kept, keys unique.
    Dict(Vec<(Value, Value)>),
    /// `array.array` of an unsigned (or non-negative signed) integer type code.
    Array {
        typecode: char,
        items: Vec<u64>,
    },
    /// A class or function reference (`GLOBAL module name`) used as a value.
    Global {
        module: String,
        name: String,
    },
    /// An instance the reader does not map to a native value (e.g. a legacy pickled
    /// `RingBuilder` instance).
    Object(Box<PyObject>),
    /// One object referenced from several places. Equality looks through it.
    Shared(Arc<Value>),
}

/// An instance: `module.name(*args)` (`newobj` false: `REDUCE`) or
/// `module.name.__new__(cls, *args)` (`newobj` true: `NEWOBJ`), then `__setstate__(state)`.
#[derive(Clone, Debug, PartialEq)]
pub struct PyObject {
    pub module: String,
    pub name: String,
    pub args: Vec<Value>,
    pub newobj: bool,
    pub state: Option<Value>,
}

impl PartialEq for Value {
    fn eq(&self, other: &Value) -> bool {
        use Value::*;
        match (self.deref_shared(), other.deref_shared()) {
            (None, None) => true,
            (Bool(a), Bool(b)) => a == b,
            (Int(a), Int(b)) => a == b,
            (BigInt(a), BigInt(b)) => a == b,
            (Float(a), Float(b)) => a == b,
            (Str(a), Str(b)) => a == b,
            (Bytes(a), Bytes(b)) => a == b,
            (List(a), List(b)) | (Tuple(a), Tuple(b)) => a == b,
            (Dict(a), Dict(b)) => a == b,
            (
                Array {
                    typecode: ta,
                    items: ia,
                },
                Array {
                    typecode: tb,
                    items: ib,
                },
            ) => ta == tb && ia == ib,
            (
                Global {
                    module: ma,
                    name: na,
                },
                Global {
                    module: mb,
                    name: nb,
                },
            ) => ma == mb && na == nb,
            (Object(a), Object(b)) => a == b,
            _ => false,
        }
    }
}

impl Value {
    /// The value itself, looking through any [`Value::Shared`] wrappers.
    pub fn deref_shared(&self) -> &Value {
        let mut v = self;
        while let Value::Shared(inner) = v {
            v = inner;
        }
        v
    }

    /// Wraps a value so that every clone of the result is one object in the pickle.
    pub fn shared(v: Value) -> Value {
        Value::Shared(Arc::new(v))
    }

    /// The Python type name, for error messages.
    pub fn type_name(&self) -> &'static str {
        match self.deref_shared() {
            Value::None => "NoneType",
            Value::Bool(_) => "bool",
            Value::Int(_) | Value::BigInt(_) => "int",
            Value::Float(_) => "float",
            Value::Str(_) => "str",
            Value::Bytes(_) => "bytes",
            Value::List(_) => "list",
            Value::Tuple(_) => "tuple",
            Value::Dict(_) => "dict",
            Value::Array { .. } => "array",
            Value::Global { .. } => "global",
            Value::Object(_) => "object",
            Value::Shared(_) => unreachable!("deref_shared removed it"),
        }
    }

    pub fn is_none(&self) -> bool {
        matches!(self.deref_shared(), Value::None)
    }

    /// A `str`, or a `bytes` holding UTF-8 (Python 2 wrote `str` as bytes).
    pub fn as_str(&self) -> Option<&str> {
        match self.deref_shared() {
            Value::Str(s) => Some(s),
            Value::Bytes(b) => std::str::from_utf8(b).ok(),
            _ => None,
        }
    }

    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self.deref_shared() {
            Value::Bytes(b) => Some(b),
            _ => None,
        }
    }

    /// An `int` that fits `i64` (a `bool` counts, as in Python).
    pub fn as_i64(&self) -> Option<i64> {
        match self.deref_shared() {
            Value::Int(i) => Some(*i),
            Value::Bool(b) => Some(*b as i64),
            _ => None,
        }
    }

    /// A non-negative `int` that fits `u64` (however it was pickled).
    pub fn as_u64(&self) -> Option<u64> {
        as_u64(self.deref_shared())
    }

    /// A `u64` as Python pickles it: beyond `i64` it needs the long form.
    pub fn from_u64(v: u64) -> Value {
        if v <= i64::MAX as u64 {
            Value::Int(v as i64)
        } else {
            let mut b = v.to_le_bytes().to_vec();
            b.push(0);
            Value::BigInt(b)
        }
    }

    /// A number: `int` or `float`.
    pub fn as_f64(&self) -> Option<f64> {
        match self.deref_shared() {
            Value::Float(f) => Some(*f),
            Value::Int(i) => Some(*i as f64),
            Value::Bool(b) => Some(*b as u8 as f64),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self.deref_shared() {
            Value::Bool(b) => Some(*b),
            Value::Int(i) => Some(*i != 0),
            _ => None,
        }
    }

    /// Items of a `list` or `tuple`.
    pub fn as_seq(&self) -> Option<&[Value]> {
        match self.deref_shared() {
            Value::List(v) | Value::Tuple(v) => Some(v),
            _ => None,
        }
    }

    pub fn as_dict(&self) -> Option<&[(Value, Value)]> {
        match self.deref_shared() {
            Value::Dict(d) => Some(d),
            _ => None,
        }
    }

    /// `d[key]` for a dict with `str` (or UTF-8 `bytes`) keys.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.as_dict()?
            .iter()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(_, v)| v)
    }
}

/// Why a pickle could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PickleError {
    /// Byte offset of the opcode that failed.
    pub offset: usize,
    /// The opcode byte, when the failure is tied to one.
    pub opcode: Option<u8>,
    pub message: String,
}

impl fmt::Display for PickleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.opcode {
            Some(op) => write!(
                f,
                "invalid pickle at byte {} (opcode {} 0x{:02x}): {}",
                self.offset,
                opcode_name(op),
                op,
                self.message
            ),
            None => write!(
                f,
                "invalid pickle at byte {}: {}",
                self.offset, self.message
            ),
        }
    }
}

impl std::error::Error for PickleError {}

mod op {
    pub const MARK: u8 = b'(';
    pub const STOP: u8 = b'.';
    pub const POP: u8 = b'0';
    pub const POP_MARK: u8 = b'1';
    pub const DUP: u8 = b'2';
    pub const FLOAT: u8 = b'F';
    pub const INT: u8 = b'I';
    pub const BININT: u8 = b'J';
    pub const BININT1: u8 = b'K';
    pub const LONG: u8 = b'L';
    pub const BININT2: u8 = b'M';
    pub const NONE: u8 = b'N';
    pub const PERSID: u8 = b'P';
    pub const BINPERSID: u8 = b'Q';
    pub const REDUCE: u8 = b'R';
    pub const STRING: u8 = b'S';
    pub const BINSTRING: u8 = b'T';
    pub const SHORT_BINSTRING: u8 = b'U';
    pub const UNICODE: u8 = b'V';
    pub const BINUNICODE: u8 = b'X';
    pub const APPEND: u8 = b'a';
    pub const BUILD: u8 = b'b';
    pub const GLOBAL: u8 = b'c';
    pub const DICT: u8 = b'd';
    pub const EMPTY_DICT: u8 = b'}';
    pub const APPENDS: u8 = b'e';
    pub const GET: u8 = b'g';
    pub const BINGET: u8 = b'h';
    pub const INST: u8 = b'i';
    pub const LONG_BINGET: u8 = b'j';
    pub const LIST: u8 = b'l';
    pub const EMPTY_LIST: u8 = b']';
    pub const OBJ: u8 = b'o';
    pub const PUT: u8 = b'p';
    pub const BINPUT: u8 = b'q';
    pub const LONG_BINPUT: u8 = b'r';
    pub const SETITEM: u8 = b's';
    pub const TUPLE: u8 = b't';
    pub const EMPTY_TUPLE: u8 = b')';
    pub const SETITEMS: u8 = b'u';
    pub const BINFLOAT: u8 = b'G';
    pub const PROTO: u8 = 0x80;
    pub const NEWOBJ: u8 = 0x81;
    pub const EXT1: u8 = 0x82;
    pub const EXT2: u8 = 0x83;
    pub const EXT4: u8 = 0x84;
    pub const TUPLE1: u8 = 0x85;
    pub const TUPLE2: u8 = 0x86;
    pub const TUPLE3: u8 = 0x87;
    pub const NEWTRUE: u8 = 0x88;
    pub const NEWFALSE: u8 = 0x89;
    pub const LONG1: u8 = 0x8a;
    pub const LONG4: u8 = 0x8b;
    pub const BINBYTES: u8 = b'B';
    pub const SHORT_BINBYTES: u8 = b'C';
    pub const SHORT_BINUNICODE: u8 = 0x8c;
    pub const BINUNICODE8: u8 = 0x8d;
    pub const BINBYTES8: u8 = 0x8e;
    pub const EMPTY_SET: u8 = 0x8f;
    pub const ADDITEMS: u8 = 0x90;
    pub const FROZENSET: u8 = 0x91;
    pub const NEWOBJ_EX: u8 = 0x92;
    pub const STACK_GLOBAL: u8 = 0x93;
    pub const MEMOIZE: u8 = 0x94;
    pub const FRAME: u8 = 0x95;
    pub const BYTEARRAY8: u8 = 0x96;
    pub const NEXT_BUFFER: u8 = 0x97;
    pub const READONLY_BUFFER: u8 = 0x98;
}

fn opcode_name(op: u8) -> &'static str {
    use op::*;
    match op {
        MARK => "MARK",
        STOP => "STOP",
        POP => "POP",
        POP_MARK => "POP_MARK",
        DUP => "DUP",
        FLOAT => "FLOAT",
        INT => "INT",
        BININT => "BININT",
        BININT1 => "BININT1",
        LONG => "LONG",
        BININT2 => "BININT2",
        NONE => "NONE",
        PERSID => "PERSID",
        BINPERSID => "BINPERSID",
        REDUCE => "REDUCE",
        STRING => "STRING",
        BINSTRING => "BINSTRING",
        SHORT_BINSTRING => "SHORT_BINSTRING",
        UNICODE => "UNICODE",
        BINUNICODE => "BINUNICODE",
        APPEND => "APPEND",
        BUILD => "BUILD",
        GLOBAL => "GLOBAL",
        DICT => "DICT",
        EMPTY_DICT => "EMPTY_DICT",
        APPENDS => "APPENDS",
        GET => "GET",
        BINGET => "BINGET",
        INST => "INST",
        LONG_BINGET => "LONG_BINGET",
        LIST => "LIST",
        EMPTY_LIST => "EMPTY_LIST",
        OBJ => "OBJ",
        PUT => "PUT",
        BINPUT => "BINPUT",
        LONG_BINPUT => "LONG_BINPUT",
        SETITEM => "SETITEM",
        TUPLE => "TUPLE",
        EMPTY_TUPLE => "EMPTY_TUPLE",
        SETITEMS => "SETITEMS",
        BINFLOAT => "BINFLOAT",
        PROTO => "PROTO",
        NEWOBJ => "NEWOBJ",
        EXT1 => "EXT1",
        EXT2 => "EXT2",
        EXT4 => "EXT4",
        TUPLE1 => "TUPLE1",
        TUPLE2 => "TUPLE2",
        TUPLE3 => "TUPLE3",
        NEWTRUE => "NEWTRUE",
        NEWFALSE => "NEWFALSE",
        LONG1 => "LONG1",
        LONG4 => "LONG4",
        BINBYTES => "BINBYTES",
        SHORT_BINBYTES => "SHORT_BINBYTES",
        SHORT_BINUNICODE => "SHORT_BINUNICODE",
        BINUNICODE8 => "BINUNICODE8",
        BINBYTES8 => "BINBYTES8",
        EMPTY_SET => "EMPTY_SET",
        ADDITEMS => "ADDITEMS",
        FROZENSET => "FROZENSET",
        NEWOBJ_EX => "NEWOBJ_EX",
        STACK_GLOBAL => "STACK_GLOBAL",
        MEMOIZE => "MEMOIZE",
        FRAME => "FRAME",
        BYTEARRAY8 => "BYTEARRAY8",
        NEXT_BUFFER => "NEXT_BUFFER",
        READONLY_BUFFER => "READONLY_BUFFER",
        _ => "unknown",
    }
}

// ---------------------------------------------------------------------------------------
// Reader
// ---------------------------------------------------------------------------------------

/// A stack or memo entry: an immediate scalar, or a handle into the arena.
#[derive(Clone, Debug)]
enum Item {
    V(Value),
    N(usize),
}

#[derive(Debug)]
enum Node {
    /// A memoized scalar (moved here so that fetching it again costs a handle).
    Scalar(Value),
    List(Vec<Item>),
    /// A list holding only ints so far: the compact form of the tables in builders.
    Ints(Vec<i64>),
    /// A list whose ints were moved into the array node it built (`array.array(tc, list)`),
    /// saving a copy of every table; it reads as a list of that array's items.
    MovedTo(usize),
    /// Already moved into the result tree (the builder takes each mutable node once).
    Taken,
    Tuple(Vec<Item>),
    Dict(Vec<(Item, Item)>, HashMap<HKey, usize>),
    Array(char, Vec<u64>),
    Global(String, String),
    Object {
        module: String,
        name: String,
        args: Vec<Item>,
        newobj: bool,
        state: Option<Item>,
    },
}

/// A dict key as Python hashes it: `1`, `1.0` and `True` are the same key.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum HKey {
    None,
    Int(i64),
    Big(Vec<u8>),
    Float(u64),
    Str(String),
    Bytes(Vec<u8>),
    Tuple(Vec<HKey>),
    Global(String, String),
}

struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
    /// Offset and opcode being executed, for errors.
    at: usize,
    opcode: u8,
    stack: Vec<Item>,
    marks: Vec<usize>,
    memo: HashMap<u64, Item>,
    arena: Vec<Node>,
}

/// Reads one pickle (protocols 0–5, the opcodes plain data needs) into a [`Value`].
pub fn loads(bytes: &[u8]) -> Result<Value, PickleError> {
    let mut r = Reader {
        data: bytes,
        pos: 0,
        at: 0,
        opcode: 0,
        stack: Vec::new(),
        marks: Vec::new(),
        memo: HashMap::new(),
        arena: Vec::new(),
    };
    let root = r.run()?;
    let mut b = Builder::new(std::mem::take(&mut r.arena), bytes.len());
    b.count_refs(&root, 0).map_err(|m| r.err_at_end(m))?;
    b.build(&root, 0).map_err(|m| r.err_at_end(m))
}

impl<'a> Reader<'a> {
    fn err(&self, msg: impl Into<String>) -> PickleError {
        PickleError {
            offset: self.at,
            opcode: Some(self.opcode),
            message: msg.into(),
        }
    }

    fn err_at_end(&self, msg: String) -> PickleError {
        PickleError {
            offset: self.at,
            opcode: Some(op::STOP),
            message: msg,
        }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], PickleError> {
        if self.data.len() - self.pos < n {
            return Err(self.err(format!(
                "truncated: needs {n} bytes, {} left",
                self.data.len() - self.pos
            )));
        }
        let s = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn take_len(&mut self, width: usize) -> Result<usize, PickleError> {
        let b = self.take(width)?;
        let mut n: u64 = 0;
        for (i, byte) in b.iter().enumerate() {
            n |= (*byte as u64) << (8 * i);
        }
        if n > (self.data.len() - self.pos) as u64 {
            return Err(self.err(format!(
                "length {n} runs past the end ({} bytes left)",
                self.data.len() - self.pos
            )));
        }
        Ok(n as usize)
    }

    fn line(&mut self) -> Result<&'a [u8], PickleError> {
        let rest = &self.data[self.pos..];
        match rest.iter().position(|&b| b == b'\n') {
            Some(i) => {
                self.pos += i + 1;
                Ok(&rest[..i])
            }
            None => Err(self.err("truncated: missing end of line")),
        }
    }

    fn line_str(&mut self) -> Result<&'a str, PickleError> {
        let l = self.line()?;
        std::str::from_utf8(l).map_err(|_| self.err("line is not valid text"))
    }

    fn push(&mut self, v: Value) {
        self.stack.push(Item::V(v));
    }

    fn push_node(&mut self, n: Node) {
        self.arena.push(n);
        self.stack.push(Item::N(self.arena.len() - 1));
    }

    fn pop(&mut self) -> Result<Item, PickleError> {
        let floor = self.marks.last().copied().unwrap_or(0);
        if self.stack.len() <= floor {
            return Err(self.err("stack underflow"));
        }
        Ok(self.stack.pop().expect("checked above"))
    }

    fn top_node(&self) -> Result<usize, PickleError> {
        let floor = self.marks.last().copied().unwrap_or(0);
        match self.stack.last() {
            Some(Item::N(i)) if self.stack.len() > floor => Ok(*i),
            Some(_) if self.stack.len() > floor => Err(self.err("target is not a container")),
            _ => Err(self.err("stack underflow")),
        }
    }

    fn pop_mark(&mut self) -> Result<Vec<Item>, PickleError> {
        let m = self.marks.pop().ok_or_else(|| self.err("no MARK"))?;
        Ok(self.stack.split_off(m))
    }

    fn memo_put(&mut self, idx: u64) -> Result<(), PickleError> {
        let floor = self.marks.last().copied().unwrap_or(0);
        if self.stack.len() <= floor {
            return Err(self.err("memoizing an empty stack"));
        }
        let top = self.stack.last_mut().expect("checked above");
        // Scalars move into the arena so later fetches share them instead of copying.
        if let Item::V(v) = top {
            let v = std::mem::replace(v, Value::None);
            self.arena.push(Node::Scalar(v));
            *top = Item::N(self.arena.len() - 1);
        }
        let item = top.clone();
        self.memo.insert(idx, item);
        Ok(())
    }

    fn memo_get(&mut self, idx: u64) -> Result<(), PickleError> {
        match self.memo.get(&idx) {
            Some(item) => {
                let item = item.clone();
                self.stack.push(item);
                Ok(())
            }
            None => Err(self.err(format!("memo key {idx} was never stored"))),
        }
    }

    fn hkey(&self, item: &Item, depth: usize) -> Result<HKey, PickleError> {
        if depth > MAX_DEPTH {
            return Err(self.err("dict key nested too deeply"));
        }
        let v = match item {
            Item::V(v) => v,
            Item::N(i) => match &self.arena[*i] {
                Node::Scalar(v) => v,
                Node::Tuple(items) => {
                    let mut keys = Vec::with_capacity(items.len());
                    for it in items {
                        keys.push(self.hkey(it, depth + 1)?);
                    }
                    return Ok(HKey::Tuple(keys));
                }
                Node::Global(m, n) => return Ok(HKey::Global(m.clone(), n.clone())),
                Node::List(_) | Node::Ints(_) | Node::MovedTo(_) => {
                    return Err(self.err("unhashable dict key: list"))
                }
                Node::Taken => return Err(self.err("internal: node already taken")),
                Node::Dict(..) => return Err(self.err("unhashable dict key: dict")),
                Node::Array(..) => return Err(self.err("unhashable dict key: array")),
                Node::Object { .. } => return Err(self.err("unsupported dict key: object")),
            },
        };
        Ok(match v {
            Value::None => HKey::None,
            Value::Bool(b) => HKey::Int(*b as i64),
            Value::Int(i) => HKey::Int(*i),
            Value::BigInt(b) => HKey::Big(b.clone()),
            Value::Float(f) => {
                if f.fract() == 0.0 && f.abs() < 9.2e18 {
                    HKey::Int(*f as i64)
                } else if *f == 0.0 {
                    HKey::Int(0)
                } else {
                    HKey::Float(f.to_bits())
                }
            }
            Value::Str(s) => HKey::Str(s.clone()),
            Value::Bytes(b) => HKey::Bytes(b.clone()),
            other => return Err(self.err(format!("unhashable dict key: {}", other.type_name()))),
        })
    }

    fn set_items(&mut self, dict: usize, pairs: Vec<Item>) -> Result<(), PickleError> {
        if !pairs.len().is_multiple_of(2) {
            return Err(self.err("odd number of items for a dict"));
        }
        if !matches!(self.arena[dict], Node::Dict(..)) {
            return Err(self.err("target is not a dict"));
        }
        let mut it = pairs.into_iter();
        while let (Some(k), Some(v)) = (it.next(), it.next()) {
            let hk = self.hkey(&k, 0)?;
            if let Node::Dict(entries, index) = &mut self.arena[dict] {
                match index.get(&hk) {
                    // Python keeps the first key object and its position, and the last value.
                    Some(&pos) => entries[pos].1 = v,
                    None => {
                        index.insert(hk, entries.len());
                        entries.push((k, v));
                    }
                }
            }
        }
        Ok(())
    }

    fn append(&mut self, list: usize, items: Vec<Item>) -> Result<(), PickleError> {
        if let Node::MovedTo(a) = self.arena[list] {
            // Appending to a list an array was built from: give it its ints back.
            let ints = match &self.arena[a] {
                Node::Array(_, items) => items.iter().map(|&x| x as i64).collect(),
                _ => Vec::new(),
            };
            self.arena[list] = Node::Ints(ints);
        }
        match &mut self.arena[list] {
            Node::Ints(v) => {
                let all_ints = items.iter().all(|it| matches!(it, Item::V(Value::Int(_))));
                if all_ints {
                    v.extend(items.iter().map(|it| match it {
                        Item::V(Value::Int(i)) => *i,
                        _ => unreachable!("checked above"),
                    }));
                } else {
                    let mut general: Vec<Item> = std::mem::take(v)
                        .into_iter()
                        .map(|i| Item::V(Value::Int(i)))
                        .collect();
                    general.extend(items);
                    self.arena[list] = Node::List(general);
                }
                Ok(())
            }
            Node::List(v) => {
                v.extend(items);
                Ok(())
            }
            _ => Err(self.err("target is not a list")),
        }
    }

    /// APPENDS of ints onto a compact int list, straight from the stack: the bulk of every
    /// builder (a million table entries per replica). False when the general path applies.
    fn append_ints_in_place(&mut self) -> Result<bool, PickleError> {
        let Some(&mark) = self.marks.last() else {
            return Ok(false);
        };
        let floor = if self.marks.len() >= 2 {
            self.marks[self.marks.len() - 2]
        } else {
            0
        };
        if mark == 0 || mark <= floor {
            return Ok(false);
        }
        let Item::N(l) = self.stack[mark - 1] else {
            return Ok(false);
        };
        let Node::Ints(list) = &mut self.arena[l] else {
            return Ok(false);
        };
        let items = &self.stack[mark..];
        if !items.iter().all(|it| matches!(it, Item::V(Value::Int(_)))) {
            return Ok(false);
        }
        list.extend(self.stack.drain(mark..).map(|it| match it {
            Item::V(Value::Int(i)) => i,
            _ => 0, // unreachable: checked above
        }));
        self.marks.pop();
        Ok(true)
    }

    /// A new list from items (protocol 0/1 `LIST`), compact when they are all ints.
    fn push_list(&mut self, items: Vec<Item>) -> Result<(), PickleError> {
        self.push_node(Node::Ints(Vec::new()));
        let l = self.arena.len() - 1;
        self.append(l, items)
    }

    /// The ints of a list node, however it is stored; None if it holds anything else.
    fn list_ints(&self, node: usize) -> Option<Vec<u64>> {
        match &self.arena[node] {
            Node::Ints(v) => v.iter().map(|&i| u64::try_from(i).ok()).collect(),
            Node::MovedTo(a) => match &self.arena[*a] {
                Node::Array(_, items) => Some(items.clone()),
                _ => None,
            },
            Node::List(items) => items
                .iter()
                .map(|it| self.scalar(it).and_then(as_u64))
                .collect(),
            _ => None,
        }
    }

    fn global(&mut self, module: String, name: String) {
        self.push_node(Node::Global(module, name));
    }

    fn scalar<'b>(&'b self, item: &'b Item) -> Option<&'b Value> {
        match item {
            Item::V(v) => Some(v),
            Item::N(i) => match &self.arena[*i] {
                Node::Scalar(v) => Some(v),
                _ => None,
            },
        }
    }

    fn str_arg(&self, item: &Item) -> Option<String> {
        self.scalar(item)
            .and_then(|v| v.as_str())
            .map(|s| s.to_string())
    }

    fn tuple_items(&self, item: &Item) -> Result<Vec<Item>, PickleError> {
        match item {
            Item::N(i) => match &self.arena[*i] {
                Node::Tuple(t) => Ok(t.clone()),
                _ => Err(self.err("arguments are not a tuple")),
            },
            _ => Err(self.err("arguments are not a tuple")),
        }
    }

    /// `callable(*args)` where callable is a global: maps the constructors plain data uses
    /// (`array.array`, `_codecs.encode`, `bytes`, `bytearray`, `array._array_reconstructor`,
    /// `copyreg._reconstructor`) to native values, anything else to an [`PyObject`].
    fn reduce(&mut self, callable: Item, args: Item, newobj: bool) -> Result<(), PickleError> {
        let (module, name) = match &callable {
            Item::N(i) => match &self.arena[*i] {
                Node::Global(m, n) => (m.clone(), n.clone()),
                _ => return Err(self.err("callable is not a global")),
            },
            _ => return Err(self.err("callable is not a global")),
        };
        let args = self.tuple_items(&args)?;
        let canonical_module = match module.as_str() {
            "__builtin__" => "builtins",
            "copy_reg" => "copyreg",
            m => m,
        };
        match (canonical_module, name.as_str(), newobj) {
            ("array", "array", false) => {
                let (tc, items) = match args.as_slice() {
                    [tc, items] => (tc, items),
                    _ => return Err(self.err("array.array takes (typecode, list)")),
                };
                let tc = self.typecode(tc)?;
                if let Item::N(i) = items {
                    let i = *i;
                    if matches!(
                        self.arena[i],
                        Node::Ints(_) | Node::MovedTo(_) | Node::List(_)
                    ) {
                        let out = self.list_ints(i);
                        let out = match out {
                            Some(out) if out.iter().all(|&x| fits(tc, x)) => out,
                            _ => {
                                return Err(
                                    self.err(format!("array('{tc}') item is not an int in range"))
                                )
                            }
                        };
                        self.push_node(Node::Array(tc, out));
                        let array = self.arena.len() - 1;
                        // Every builder table: drop the list's copy of the ints.
                        if matches!(self.arena[i], Node::Ints(_)) {
                            self.arena[i] = Node::MovedTo(array);
                        }
                        return Ok(());
                    }
                }
                if let Some(Value::Bytes(b)) = self.scalar(items) {
                    // Python 2 pickled an array as (typecode, its machine bytes): x86 and
                    // every platform Swift ran on is little-endian, with C long 8 bytes.
                    let (width, signed) = match tc {
                        'B' => (1, false),
                        'b' => (1, true),
                        'H' => (2, false),
                        'h' => (2, true),
                        'I' => (4, false),
                        'i' => (4, true),
                        'L' | 'Q' => (8, false),
                        _ => (8, true),
                    };
                    let code = match (width, signed) {
                        (1, false) => 0,
                        (1, true) => 1,
                        (2, false) => 2,
                        (2, true) => 4,
                        (4, false) => 6,
                        (4, true) => 8,
                        (_, false) => 10,
                        (_, true) => 12,
                    };
                    let Some(out) = decode_machine_format(code, b) else {
                        return Err(self.err(format!(
                            "array('{tc}') bytes are not whole items, or hold a negative one"
                        )));
                    };
                    self.push_node(Node::Array(tc, out));
                    return Ok(());
                }
                Err(self.err("array.array items are not a list"))
            }
            ("array", "_array_reconstructor", false) => {
                let [_, tc, mformat, data] = args.as_slice() else {
                    return Err(self
                        .err("array._array_reconstructor takes (cls, typecode, mformat, bytes)"));
                };
                let tc = self.typecode(tc)?;
                let mformat = match self.scalar(mformat) {
                    Some(Value::Int(m)) => *m,
                    _ => return Err(self.err("array machine format is not an int")),
                };
                let data = match self.scalar(data) {
                    Some(Value::Bytes(b)) => b.clone(),
                    _ => return Err(self.err("array data is not bytes")),
                };
                let items = decode_machine_format(mformat, &data).ok_or_else(|| {
                    self.err(format!("unsupported array machine format {mformat}"))
                })?;
                if let Some(bad) = items.iter().find(|&&x| !fits(tc, x)) {
                    return Err(self.err(format!("array('{tc}') item {bad} out of range")));
                }
                self.push_node(Node::Array(tc, items));
                Ok(())
            }
            ("_codecs", "encode", false) => {
                let (s, enc) = match args.as_slice() {
                    [s, enc] => (self.str_arg(s), self.str_arg(enc)),
                    [s] => (self.str_arg(s), Some("utf-8".to_string())),
                    _ => (None, None),
                };
                let (Some(s), Some(enc)) = (s, enc) else {
                    return Err(self.err("_codecs.encode takes (str, encoding)"));
                };
                let bytes = match enc.to_ascii_lowercase().replace('_', "-").as_str() {
                    "latin1" | "latin-1" | "iso-8859-1" | "iso8859-1" => {
                        let mut out = Vec::with_capacity(s.len());
                        for c in s.chars() {
                            if (c as u32) > 0xff {
                                return Err(self.err("character outside latin-1"));
                            }
                            out.push(c as u32 as u8);
                        }
                        out
                    }
                    "utf-8" | "utf8" | "ascii" => s.into_bytes(),
                    other => return Err(self.err(format!("unsupported encoding {other:?}"))),
                };
                self.push(Value::Bytes(bytes));
                Ok(())
            }
            ("builtins", "bytes" | "bytearray", false) => {
                match args.as_slice() {
                    [] => self.push(Value::Bytes(Vec::new())),
                    [a] => {
                        if let Some(Value::Bytes(b)) = self.scalar(a) {
                            let b = b.clone();
                            self.push(Value::Bytes(b));
                            return Ok(());
                        }
                        let ints = match a {
                            Item::N(i) => self.list_ints(*i),
                            _ => None,
                        };
                        let out: Option<Vec<u8>> = ints
                            .and_then(|v| v.into_iter().map(|x| u8::try_from(x).ok()).collect());
                        let Some(out) = out else {
                            return Err(self.err(format!("bad arguments for {name}")));
                        };
                        self.push(Value::Bytes(out));
                    }
                    [s, enc] => {
                        // bytearray(str, 'latin-1'): Python 3's protocol-2 bytearray.
                        let callable = Item::N(self.arena.len());
                        self.arena
                            .push(Node::Global("_codecs".into(), "encode".into()));
                        self.arena.push(Node::Tuple(vec![s.clone(), enc.clone()]));
                        let targs = Item::N(self.arena.len() - 1);
                        return self.reduce(callable, targs, false);
                    }
                    _ => return Err(self.err(format!("bad arguments for {name}"))),
                }
                Ok(())
            }
            ("copyreg", "_reconstructor", false) => {
                // Python 2 protocols 0/1 pickle a new-style instance as
                // copy_reg._reconstructor(cls, object, None), then BUILD.
                let cls = args.first().cloned();
                let (m, n) = match cls {
                    Some(Item::N(i)) => match &self.arena[i] {
                        Node::Global(m, n) => (m.clone(), n.clone()),
                        _ => return Err(self.err("_reconstructor class is not a global")),
                    },
                    _ => return Err(self.err("_reconstructor class is not a global")),
                };
                self.push_node(Node::Object {
                    module: m,
                    name: n,
                    args: Vec::new(),
                    newobj: true,
                    state: None,
                });
                Ok(())
            }
            _ => {
                self.push_node(Node::Object {
                    module,
                    name,
                    args,
                    newobj,
                    state: None,
                });
                Ok(())
            }
        }
    }

    fn typecode(&self, item: &Item) -> Result<char, PickleError> {
        let tc = self
            .str_arg(item)
            .ok_or_else(|| self.err("array typecode is not a str"))?;
        let mut chars = tc.chars();
        match (chars.next(), chars.next()) {
            (Some(c), None) if "bBhHiIlLqQ".contains(c) => Ok(c),
            _ => Err(self.err(format!("unsupported array typecode {tc:?}"))),
        }
    }

    fn run(&mut self) -> Result<Item, PickleError> {
        use op::*;
        loop {
            self.at = self.pos;
            let Some(&code) = self.data.get(self.pos) else {
                return Err(PickleError {
                    offset: self.pos,
                    opcode: None,
                    message: "truncated: no STOP opcode".into(),
                });
            };
            self.opcode = code;
            self.pos += 1;
            match code {
                PROTO => {
                    let v = self.take(1)?[0];
                    if v > 5 {
                        return Err(self.err(format!("unsupported protocol {v}")));
                    }
                }
                FRAME => {
                    self.take(8)?;
                }
                STOP => {
                    let top = self.pop()?;
                    return Ok(top);
                }
                MARK => self.marks.push(self.stack.len()),
                POP => {
                    if self.stack.len() == self.marks.last().copied().unwrap_or(usize::MAX)
                        && !self.marks.is_empty()
                    {
                        // POP of a mark: Python drops the mark itself.
                        self.marks.pop();
                    } else {
                        self.pop()?;
                    }
                }
                POP_MARK => {
                    self.pop_mark()?;
                }
                DUP => {
                    let top = self.pop()?;
                    self.stack.push(top.clone());
                    self.stack.push(top);
                }
                NONE => self.push(Value::None),
                NEWTRUE => self.push(Value::Bool(true)),
                NEWFALSE => self.push(Value::Bool(false)),
                INT => {
                    let l = self.line_str()?;
                    let v = match l {
                        "01" => Value::Bool(true),
                        "00" => Value::Bool(false),
                        _ => parse_decimal(l).ok_or_else(|| self.err("bad INT literal"))?,
                    };
                    self.push(v);
                }
                LONG => {
                    let l = self.line_str()?;
                    let v = parse_decimal(l.strip_suffix('L').unwrap_or(l))
                        .ok_or_else(|| self.err("bad LONG literal"))?;
                    self.push(v);
                }
                BININT => {
                    let b = self.take(4)?;
                    self.push(Value::Int(
                        i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as i64
                    ));
                }
                BININT1 => {
                    let b = self.take(1)?[0];
                    self.push(Value::Int(b as i64));
                }
                BININT2 => {
                    let b = self.take(2)?;
                    self.push(Value::Int(u16::from_le_bytes([b[0], b[1]]) as i64));
                }
                LONG1 | LONG4 => {
                    let n = self.take_len(if code == LONG1 { 1 } else { 4 })?;
                    let b = self.take(n)?;
                    self.push(int_from_le_twos(b));
                }
                FLOAT => {
                    let l = self.line_str()?;
                    let f: f64 = l
                        .trim()
                        .parse()
                        .map_err(|_| self.err(format!("bad FLOAT literal {l:?}")))?;
                    self.push(Value::Float(f));
                }
                BINFLOAT => {
                    let b = self.take(8)?;
                    let mut a = [0u8; 8];
                    a.copy_from_slice(b);
                    self.push(Value::Float(f64::from_be_bytes(a)));
                }
                STRING => {
                    let l = self.line()?;
                    let b = unquote_py2_string(l).ok_or_else(|| self.err("bad STRING literal"))?;
                    self.push(Value::Bytes(b));
                }
                BINSTRING | BINBYTES => {
                    let n = self.take_len(4)?;
                    let b = self.take(n)?.to_vec();
                    self.push(Value::Bytes(b));
                }
                SHORT_BINSTRING | SHORT_BINBYTES => {
                    let n = self.take_len(1)?;
                    let b = self.take(n)?.to_vec();
                    self.push(Value::Bytes(b));
                }
                BINBYTES8 | BYTEARRAY8 => {
                    let n = self.take_len(8)?;
                    let b = self.take(n)?.to_vec();
                    self.push(Value::Bytes(b));
                }
                UNICODE => {
                    let l = self.line()?;
                    let s =
                        raw_unicode_unescape(l).ok_or_else(|| self.err("bad UNICODE literal"))?;
                    self.push(Value::Str(s));
                }
                BINUNICODE | SHORT_BINUNICODE | BINUNICODE8 => {
                    let width = match code {
                        SHORT_BINUNICODE => 1,
                        BINUNICODE => 4,
                        _ => 8,
                    };
                    let n = self.take_len(width)?;
                    let b = self.take(n)?;
                    let s = std::str::from_utf8(b)
                        .map_err(|_| self.err("string is not valid UTF-8"))?;
                    self.push(Value::Str(s.to_string()));
                }
                EMPTY_LIST => self.push_node(Node::Ints(Vec::new())),
                EMPTY_DICT => self.push_node(Node::Dict(Vec::new(), HashMap::new())),
                EMPTY_TUPLE => self.push_node(Node::Tuple(Vec::new())),
                LIST => {
                    let items = self.pop_mark()?;
                    self.push_list(items)?;
                }
                TUPLE => {
                    let items = self.pop_mark()?;
                    self.push_node(Node::Tuple(items));
                }
                TUPLE1 | TUPLE2 | TUPLE3 => {
                    let n = (code - TUPLE1 + 1) as usize;
                    let floor = self.marks.last().copied().unwrap_or(0);
                    if self.stack.len() < floor + n {
                        return Err(self.err("stack underflow"));
                    }
                    let items = self.stack.split_off(self.stack.len() - n);
                    self.push_node(Node::Tuple(items));
                }
                DICT => {
                    let items = self.pop_mark()?;
                    self.push_node(Node::Dict(Vec::new(), HashMap::new()));
                    let d = self.arena.len() - 1;
                    self.set_items(d, items)?;
                }
                APPEND => {
                    let v = self.pop()?;
                    let l = self.top_node()?;
                    self.append(l, vec![v])?;
                }
                APPENDS => {
                    if !self.append_ints_in_place()? {
                        let items = self.pop_mark()?;
                        let l = self.top_node()?;
                        self.append(l, items)?;
                    }
                }
                SETITEM => {
                    let v = self.pop()?;
                    let k = self.pop()?;
                    let d = self.top_node()?;
                    self.set_items(d, vec![k, v])?;
                }
                SETITEMS => {
                    let items = self.pop_mark()?;
                    let d = self.top_node()?;
                    self.set_items(d, items)?;
                }
                PUT => {
                    let l = self.line_str()?;
                    let idx: u64 = l.parse().map_err(|_| self.err("bad PUT index"))?;
                    self.memo_put(idx)?;
                }
                BINPUT => {
                    let idx = self.take(1)?[0] as u64;
                    self.memo_put(idx)?;
                }
                LONG_BINPUT => {
                    let b = self.take(4)?;
                    self.memo_put(u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as u64)?;
                }
                MEMOIZE => {
                    let idx = self.memo.len() as u64;
                    self.memo_put(idx)?;
                }
                GET => {
                    let l = self.line_str()?;
                    let idx: u64 = l.parse().map_err(|_| self.err("bad GET index"))?;
                    self.memo_get(idx)?;
                }
                BINGET => {
                    let idx = self.take(1)?[0] as u64;
                    self.memo_get(idx)?;
                }
                LONG_BINGET => {
                    let b = self.take(4)?;
                    self.memo_get(u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as u64)?;
                }
                GLOBAL => {
                    let m = self.line_str()?.to_string();
                    let n = self.line_str()?.to_string();
                    self.global(m, n);
                }
                STACK_GLOBAL => {
                    let n = self.pop()?;
                    let m = self.pop()?;
                    let (Some(m), Some(n)) = (self.str_arg(&m), self.str_arg(&n)) else {
                        return Err(self.err("module and name must be str"));
                    };
                    self.global(m, n);
                }
                REDUCE => {
                    let args = self.pop()?;
                    let callable = self.pop()?;
                    self.reduce(callable, args, false)?;
                }
                NEWOBJ => {
                    let args = self.pop()?;
                    let cls = self.pop()?;
                    self.reduce(cls, args, true)?;
                }
                NEWOBJ_EX => {
                    let kwargs = self.pop()?;
                    let args = self.pop()?;
                    let cls = self.pop()?;
                    let empty = match &kwargs {
                        Item::N(i) => matches!(&self.arena[*i], Node::Dict(d, _) if d.is_empty()),
                        _ => false,
                    };
                    if !empty {
                        return Err(self.err("NEWOBJ_EX with keyword arguments is not supported"));
                    }
                    self.reduce(cls, args, true)?;
                }
                INST => {
                    let m = self.line_str()?.to_string();
                    let n = self.line_str()?.to_string();
                    let args = self.pop_mark()?;
                    self.push_node(Node::Object {
                        module: m,
                        name: n,
                        args,
                        newobj: false,
                        state: None,
                    });
                }
                OBJ => {
                    let mut items = self.pop_mark()?;
                    if items.is_empty() {
                        return Err(self.err("OBJ without a class"));
                    }
                    let cls = items.remove(0);
                    let args = Item::N(self.arena.len());
                    self.arena.push(Node::Tuple(items));
                    self.reduce(cls, args, false)?;
                }
                BUILD => {
                    let state = self.pop()?;
                    let target = self.top_node()?;
                    match &mut self.arena[target] {
                        Node::Object { state: s, .. } => *s = Some(state),
                        _ => return Err(self.err("BUILD target is not an object")),
                    }
                }
                PERSID | BINPERSID => {
                    return Err(self.err("persistent ids are not supported"));
                }
                EXT1 | EXT2 | EXT4 => {
                    return Err(self.err("extension registry codes are not supported"));
                }
                EMPTY_SET | ADDITEMS | FROZENSET => {
                    return Err(self.err("sets are not supported"));
                }
                NEXT_BUFFER | READONLY_BUFFER => {
                    return Err(self.err("out-of-band buffers are not supported"));
                }
                _ => return Err(self.err("unknown opcode")),
            }
        }
    }
}

/// A non-negative int that fits `u64` (`array('Q')` items above `i64::MAX` are LONG1s).
fn as_u64(v: &Value) -> Option<u64> {
    match v {
        Value::Int(i) if *i >= 0 => Some(*i as u64),
        Value::BigInt(b) if b.len() == 9 && b[8] == 0 => {
            let mut a = [0u8; 8];
            a.copy_from_slice(&b[..8]);
            Some(u64::from_le_bytes(a))
        }
        _ => None,
    }
}

fn fits(tc: char, v: u64) -> bool {
    match tc {
        'b' => v <= i8::MAX as u64,
        'B' => v <= u8::MAX as u64,
        'h' => v <= i16::MAX as u64,
        'H' => v <= u16::MAX as u64,
        'i' | 'l' => v <= i32::MAX as u64,
        'I' | 'L' => v <= u32::MAX as u64,
        'q' => v <= i64::MAX as u64,
        _ => true,
    }
}

/// Python's `array` machine format codes for unsigned and signed integers.
fn decode_machine_format(code: i64, data: &[u8]) -> Option<Vec<u64>> {
    let (width, signed, big) = match code {
        0 => (1, false, false),
        1 => (1, true, false),
        2 => (2, false, false),
        3 => (2, false, true),
        4 => (2, true, false),
        5 => (2, true, true),
        6 => (4, false, false),
        7 => (4, false, true),
        8 => (4, true, false),
        9 => (4, true, true),
        10 => (8, false, false),
        11 => (8, false, true),
        12 => (8, true, false),
        13 => (8, true, true),
        _ => return None,
    };
    if !data.len().is_multiple_of(width) {
        return None;
    }
    let mut out = Vec::with_capacity(data.len() / width);
    for chunk in data.chunks(width) {
        let mut v: u64 = 0;
        for (i, b) in chunk.iter().enumerate() {
            let shift = if big { 8 * (width - 1 - i) } else { 8 * i };
            v |= (*b as u64) << shift;
        }
        if signed {
            let sign_bit = 1u64 << (8 * width - 1);
            if v & sign_bit != 0 {
                return None; // negative items have no place in Value::Array
            }
        }
        out.push(v);
    }
    Some(out)
}

fn parse_decimal(s: &str) -> Option<Value> {
    let s = s.trim();
    if let Ok(i) = s.parse::<i64>() {
        return Some(Value::Int(i));
    }
    // Larger than i64: keep it exactly, as LONG1 bytes.
    let (neg, digits) = match s.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    // Python 3.11 refuses to convert more than 4300 digits; so does Ringsmith.
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) || digits.len() > 4300 {
        return None;
    }
    // Magnitude in little-endian 64-bit limbs, taking 18 digits per multiply.
    let mut limbs: Vec<u64> = vec![0];
    for chunk in digits.as_bytes().chunks(18) {
        let scale = 10u128.pow(chunk.len() as u32);
        let mut carry: u128 = chunk
            .iter()
            .fold(0u128, |acc, d| acc * 10 + (d - b'0') as u128);
        for limb in limbs.iter_mut() {
            let x = *limb as u128 * scale + carry;
            *limb = x as u64;
            carry = x >> 64;
        }
        if carry > 0 {
            limbs.push(carry as u64);
        }
    }
    let mut mag: Vec<u8> = limbs.iter().flat_map(|l| l.to_le_bytes()).collect();
    mag.push(0); // room for the sign bit
    if neg {
        // two's complement: invert and add one
        let mut carry = 1u16;
        for byte in mag.iter_mut() {
            let x = (!*byte) as u16 + carry;
            *byte = x as u8;
            carry = x >> 8;
        }
    }
    Some(int_from_le_twos(&mag))
}

/// A LONG1/LONG4 payload: an `Int` when it fits, else a normalized `BigInt`.
fn int_from_le_twos(b: &[u8]) -> Value {
    if b.is_empty() {
        return Value::Int(0);
    }
    let neg = b[b.len() - 1] & 0x80 != 0;
    // Drop redundant sign-extension bytes.
    let fill = if neg { 0xff } else { 0x00 };
    let mut len = b.len();
    while len > 1 && b[len - 1] == fill && (b[len - 2] & 0x80 != 0) == neg {
        len -= 1;
    }
    let b = &b[..len];
    if len <= 8 {
        let mut a = [fill; 8];
        a[..len].copy_from_slice(b);
        Value::Int(i64::from_le_bytes(a))
    } else {
        Value::BigInt(b.to_vec())
    }
}

/// Python 2 `repr()` of a str, as protocol 0's STRING carries it.
fn unquote_py2_string(l: &[u8]) -> Option<Vec<u8>> {
    let l = if l.ends_with(b"\r") {
        &l[..l.len() - 1]
    } else {
        l
    };
    if l.len() < 2 || l[0] != l[l.len() - 1] || (l[0] != b'\'' && l[0] != b'"') {
        return None;
    }
    let body = &l[1..l.len() - 1];
    let mut out = Vec::with_capacity(body.len());
    let mut i = 0;
    while i < body.len() {
        let c = body[i];
        if c != b'\\' {
            out.push(c);
            i += 1;
            continue;
        }
        let e = *body.get(i + 1)?;
        i += 2;
        match e {
            b'n' => out.push(b'\n'),
            b't' => out.push(b'\t'),
            b'r' => out.push(b'\r'),
            b'a' => out.push(7),
            b'b' => out.push(8),
            b'f' => out.push(12),
            b'v' => out.push(11),
            b'\\' | b'\'' | b'"' => out.push(e),
            b'\n' => {}
            b'x' => {
                let h = body.get(i..i + 2)?;
                let h = std::str::from_utf8(h).ok()?;
                out.push(u8::from_str_radix(h, 16).ok()?);
                i += 2;
            }
            b'0'..=b'7' => {
                let mut v = (e - b'0') as u32;
                for _ in 0..2 {
                    match body.get(i) {
                        Some(&d @ b'0'..=b'7') => {
                            v = v * 8 + (d - b'0') as u32;
                            i += 1;
                        }
                        _ => break,
                    }
                }
                out.push(v as u8);
            }
            other => {
                out.push(b'\\');
                out.push(other);
            }
        }
    }
    Some(out)
}

/// Protocol 0's UNICODE: latin-1 text with `\uXXXX` and `\UXXXXXXXX` escapes.
fn raw_unicode_unescape(l: &[u8]) -> Option<String> {
    let mut out = String::with_capacity(l.len());
    let mut i = 0;
    while i < l.len() {
        if l[i] == b'\\' && i + 1 < l.len() && (l[i + 1] == b'u' || l[i + 1] == b'U') {
            let n = if l[i + 1] == b'u' { 4 } else { 8 };
            let h = l.get(i + 2..i + 2 + n)?;
            let cp = u32::from_str_radix(std::str::from_utf8(h).ok()?, 16).ok()?;
            out.push(char::from_u32(cp)?);
            i += 2 + n;
        } else {
            out.push(l[i] as char);
            i += 1;
        }
    }
    Some(out)
}

/// Turns the arena into a tree once the machine has stopped. Each mutable node is built
/// once (moved out of the arena, then shared if referenced again); immutable ones are
/// copied where referenced more than once, within the budget.
struct Builder {
    arena: Vec<Node>,
    refs: Vec<u32>,
    built: HashMap<usize, Arc<Value>>,
    in_progress: Vec<bool>,
    /// Bytes left for copying values referenced more than once.
    budget: usize,
}

impl Builder {
    fn new(arena: Vec<Node>, input_len: usize) -> Self {
        let n = arena.len();
        Builder {
            arena,
            refs: vec![0; n],
            built: HashMap::new(),
            in_progress: vec![false; n],
            budget: input_len.saturating_mul(64).saturating_add(1 << 20),
        }
    }

    fn children(node: &Node) -> Vec<Item> {
        match node {
            Node::Scalar(_) | Node::Array(..) | Node::Global(..) | Node::Ints(_) | Node::Taken => {
                Vec::new()
            }
            Node::MovedTo(a) => vec![Item::N(*a)],
            Node::List(v) | Node::Tuple(v) => v.clone(),
            Node::Dict(d, _) => d.iter().flat_map(|(k, v)| [k.clone(), v.clone()]).collect(),
            Node::Object { args, state, .. } => args.iter().chain(state.iter()).cloned().collect(),
        }
    }

    /// Counts references to each node from everything reachable from the root.
    fn count_refs(&mut self, item: &Item, depth: usize) -> Result<(), String> {
        let Item::N(i) = item else { return Ok(()) };
        if depth > MAX_DEPTH {
            return Err(format!("nested more than {MAX_DEPTH} levels deep"));
        }
        self.refs[*i] = self.refs[*i].saturating_add(1);
        if self.refs[*i] > 1 {
            return Ok(());
        }
        for child in Self::children(&self.arena[*i]) {
            self.count_refs(&child, depth + 1)?;
        }
        Ok(())
    }

    fn charge(&mut self, cost: usize) -> Result<(), String> {
        if cost > self.budget {
            return Err("shared values expand beyond the size limit".into());
        }
        self.budget -= cost;
        Ok(())
    }

    fn build_items(&mut self, items: &[Item], depth: usize) -> Result<Vec<Value>, String> {
        let mut out = Vec::with_capacity(items.len());
        for it in items {
            out.push(self.build(it, depth + 1)?);
        }
        Ok(out)
    }

    fn build(&mut self, item: &Item, depth: usize) -> Result<Value, String> {
        let i = match item {
            Item::V(v) => return Ok(v.clone()),
            Item::N(i) => *i,
        };
        if depth > MAX_DEPTH {
            return Err(format!("nested more than {MAX_DEPTH} levels deep"));
        }
        let mutable = matches!(
            self.arena[i],
            Node::List(_)
                | Node::Ints(_)
                | Node::MovedTo(_)
                | Node::Dict(..)
                | Node::Array(..)
                | Node::Object { .. }
                | Node::Taken
        );
        if mutable {
            if let Some(a) = self.built.get(&i) {
                return Ok(Value::Shared(a.clone()));
            }
        }
        if self.in_progress[i] {
            return Err("recursive structure (an object containing itself)".into());
        }
        let shared = self.refs[i] > 1;
        let node = if mutable || !shared {
            // Built exactly once: move it out of the arena.
            std::mem::replace(&mut self.arena[i], Node::Taken)
        } else {
            // Copied rather than shared: charge the copy.
            let cost = match &self.arena[i] {
                Node::Scalar(Value::Str(s)) => 32 + s.len(),
                Node::Scalar(Value::Bytes(b)) => 32 + b.len(),
                Node::Scalar(Value::BigInt(b)) => 32 + b.len(),
                Node::Tuple(t) => 32 + 32 * t.len(),
                Node::Global(m, n) => 32 + m.len() + n.len(),
                _ => 32,
            };
            self.charge(cost)?;
            match &self.arena[i] {
                Node::Scalar(v) => Node::Scalar(v.clone()),
                Node::Tuple(t) => Node::Tuple(t.clone()),
                Node::Global(m, n) => Node::Global(m.clone(), n.clone()),
                _ => return Err("internal: unexpected shared node".into()),
            }
        };
        self.in_progress[i] = true;
        let v = match node {
            Node::Scalar(v) => v,
            Node::List(items) => Value::List(self.build_items(&items, depth)?),
            Node::Ints(v) => Value::List(v.into_iter().map(Value::Int).collect()),
            Node::MovedTo(a) => {
                let array = self.build(&Item::N(a), depth + 1)?;
                match array.deref_shared() {
                    Value::Array { items, .. } => {
                        self.charge(32 * items.len())?;
                        Value::List(items.iter().map(|&x| Value::Int(x as i64)).collect())
                    }
                    _ => return Err("internal: moved list lost its array".into()),
                }
            }
            Node::Tuple(items) => Value::Tuple(self.build_items(&items, depth)?),
            Node::Dict(entries, _) => {
                let mut out = Vec::with_capacity(entries.len());
                for (k, v) in &entries {
                    out.push((self.build(k, depth + 1)?, self.build(v, depth + 1)?));
                }
                Value::Dict(out)
            }
            Node::Array(typecode, items) => Value::Array { typecode, items },
            Node::Global(module, name) => Value::Global { module, name },
            Node::Object {
                module,
                name,
                args,
                newobj,
                state,
            } => {
                let args = self.build_items(&args, depth)?;
                let state = match state {
                    Some(s) => Some(self.build(&s, depth + 1)?),
                    None => None,
                };
                Value::Object(Box::new(PyObject {
                    module,
                    name,
                    args,
                    newobj,
                    state,
                }))
            }
            Node::Taken => return Err("internal: node built twice".into()),
        };
        self.in_progress[i] = false;
        if mutable && shared {
            let a = Arc::new(v);
            self.built.insert(i, a.clone());
            return Ok(Value::Shared(a));
        }
        Ok(v)
    }
}

// ---------------------------------------------------------------------------------------
// Writer
// ---------------------------------------------------------------------------------------

const BATCH: usize = 1000;

struct Writer {
    out: Vec<u8>,
    next_memo: u32,
    strings: HashMap<String, u32>,
    globals: HashMap<(String, String), u32>,
    shared: HashMap<*const Value, u32>,
}

/// Writes `value` as a protocol-2 pickle, the way CPython's pickler lays it out.
pub fn dumps(value: &Value) -> Vec<u8> {
    let mut w = Writer {
        out: Vec::with_capacity(1024),
        next_memo: 0,
        strings: HashMap::new(),
        globals: HashMap::new(),
        shared: HashMap::new(),
    };
    w.out.extend_from_slice(&[op::PROTO, 2]);
    w.save(value);
    w.out.push(op::STOP);
    w.out
}

impl Writer {
    fn put(&mut self) -> u32 {
        let idx = self.next_memo;
        self.next_memo += 1;
        if idx < 256 {
            self.out.extend_from_slice(&[op::BINPUT, idx as u8]);
        } else {
            self.out.push(op::LONG_BINPUT);
            self.out.extend_from_slice(&idx.to_le_bytes());
        }
        idx
    }

    fn get(&mut self, idx: u32) {
        if idx < 256 {
            self.out.extend_from_slice(&[op::BINGET, idx as u8]);
        } else {
            self.out.push(op::LONG_BINGET);
            self.out.extend_from_slice(&idx.to_le_bytes());
        }
    }

    fn save_int(&mut self, i: i64) {
        if (0..256).contains(&i) {
            self.out.extend_from_slice(&[op::BININT1, i as u8]);
        } else if (0..65536).contains(&i) {
            self.out.push(op::BININT2);
            self.out.extend_from_slice(&(i as u16).to_le_bytes());
        } else if i >= i32::MIN as i64 && i <= i32::MAX as i64 {
            self.out.push(op::BININT);
            self.out.extend_from_slice(&(i as i32).to_le_bytes());
        } else {
            let b = i.to_le_bytes();
            // Shortest two's complement form, as Python's encode_long.
            let mut len = 8;
            let neg = i < 0;
            let fill = if neg { 0xff } else { 0 };
            while len > 1 && b[len - 1] == fill && (b[len - 2] & 0x80 != 0) == neg {
                len -= 1;
            }
            self.out.extend_from_slice(&[op::LONG1, len as u8]);
            self.out.extend_from_slice(&b[..len]);
        }
    }

    fn save_str(&mut self, s: &str) -> u32 {
        if let Some(&idx) = self.strings.get(s) {
            self.get(idx);
            return idx;
        }
        self.out.push(op::BINUNICODE);
        self.out.extend_from_slice(&(s.len() as u32).to_le_bytes());
        self.out.extend_from_slice(s.as_bytes());
        let idx = self.put();
        self.strings.insert(s.to_string(), idx);
        idx
    }

    fn save_global(&mut self, module: &str, name: &str) -> u32 {
        let key = (module.to_string(), name.to_string());
        if let Some(&idx) = self.globals.get(&key) {
            self.get(idx);
            return idx;
        }
        self.out.push(op::GLOBAL);
        self.out.extend_from_slice(module.as_bytes());
        self.out.push(b'\n');
        self.out.extend_from_slice(name.as_bytes());
        self.out.push(b'\n');
        let idx = self.put();
        self.globals.insert(key, idx);
        idx
    }

    fn save_tuple(&mut self, items: &[Value]) -> Option<u32> {
        match items.len() {
            0 => {
                self.out.push(op::EMPTY_TUPLE);
                return None;
            }
            1..=3 => {
                for it in items {
                    self.save(it);
                }
                self.out.push(op::TUPLE1 + items.len() as u8 - 1);
            }
            _ => {
                self.out.push(op::MARK);
                for it in items {
                    self.save(it);
                }
                self.out.push(op::TUPLE);
            }
        }
        Some(self.put())
    }

    fn save_list_items<'v>(&mut self, items: impl ExactSizeIterator<Item = &'v Value>) {
        let mut items = items.peekable();
        while items.peek().is_some() {
            let batch: Vec<&Value> = items.by_ref().take(BATCH).collect();
            if batch.len() == 1 {
                self.save(batch[0]);
                self.out.push(op::APPEND);
            } else {
                self.out.push(op::MARK);
                for v in batch {
                    self.save(v);
                }
                self.out.push(op::APPENDS);
            }
        }
    }

    /// Writes one value; returns the memo index it was stored under, if any.
    fn save(&mut self, v: &Value) -> Option<u32> {
        match v {
            Value::None => {
                self.out.push(op::NONE);
                None
            }
            Value::Bool(b) => {
                self.out.push(if *b { op::NEWTRUE } else { op::NEWFALSE });
                None
            }
            Value::Int(i) => {
                self.save_int(*i);
                None
            }
            Value::BigInt(b) => {
                if b.len() < 256 {
                    self.out.extend_from_slice(&[op::LONG1, b.len() as u8]);
                } else {
                    self.out.push(op::LONG4);
                    self.out.extend_from_slice(&(b.len() as u32).to_le_bytes());
                }
                self.out.extend_from_slice(b);
                None
            }
            Value::Float(f) => {
                self.out.push(op::BINFLOAT);
                self.out.extend_from_slice(&f.to_be_bytes());
                None
            }
            Value::Str(s) => Some(self.save_str(s)),
            Value::Bytes(b) => {
                if b.is_empty() {
                    self.save_global("__builtin__", "bytes");
                    self.out.push(op::EMPTY_TUPLE);
                } else {
                    self.save_global("_codecs", "encode");
                    // Python 3 below protocol 3: bytes are latin-1 text re-encoded.
                    let latin1: String = b.iter().map(|&c| c as char).collect();
                    self.save_str(&latin1);
                    self.save_str("latin1");
                    self.out.push(op::TUPLE2);
                    self.put();
                }
                self.out.push(op::REDUCE);
                Some(self.put())
            }
            Value::List(items) => {
                self.out.push(op::EMPTY_LIST);
                let idx = self.put();
                self.save_list_items(items.iter());
                Some(idx)
            }
            Value::Tuple(items) => self.save_tuple(items),
            Value::Dict(entries) => {
                self.out.push(op::EMPTY_DICT);
                let idx = self.put();
                for batch in entries.chunks(BATCH) {
                    if batch.len() == 1 {
                        self.save(&batch[0].0);
                        self.save(&batch[0].1);
                        self.out.push(op::SETITEM);
                    } else {
                        self.out.push(op::MARK);
                        for (k, v) in batch {
                            self.save(k);
                            self.save(v);
                        }
                        self.out.push(op::SETITEMS);
                    }
                }
                Some(idx)
            }
            Value::Array { typecode, items } => {
                self.save_global("array", "array");
                self.save_str(&typecode.to_string());
                self.out.push(op::EMPTY_LIST);
                self.put();
                let mut rest = &items[..];
                while !rest.is_empty() {
                    let n = rest.len().min(BATCH);
                    if n == 1 {
                        self.save_u64(rest[0]);
                        self.out.push(op::APPEND);
                    } else {
                        self.out.push(op::MARK);
                        for &x in &rest[..n] {
                            self.save_u64(x);
                        }
                        self.out.push(op::APPENDS);
                    }
                    rest = &rest[n..];
                }
                self.out.push(op::TUPLE2);
                self.put();
                self.out.push(op::REDUCE);
                Some(self.put())
            }
            Value::Global { module, name } => Some(self.save_global(module, name)),
            Value::Object(o) => {
                self.save_global(&o.module, &o.name);
                self.save_tuple(&o.args);
                self.out
                    .push(if o.newobj { op::NEWOBJ } else { op::REDUCE });
                let idx = self.put();
                if let Some(state) = &o.state {
                    self.save(state);
                    self.out.push(op::BUILD);
                }
                Some(idx)
            }
            Value::Shared(inner) => {
                let ptr = Arc::as_ptr(inner);
                if let Some(&idx) = self.shared.get(&ptr) {
                    self.get(idx);
                    return Some(idx);
                }
                let idx = self.save(inner);
                if let Some(idx) = idx {
                    self.shared.insert(ptr, idx);
                }
                idx
            }
        }
    }

    fn save_u64(&mut self, x: u64) {
        if x <= i64::MAX as u64 {
            self.save_int(x as i64);
        } else {
            let mut b = x.to_le_bytes().to_vec();
            b.push(0);
            self.out.extend_from_slice(&[op::LONG1, 9]);
            self.out.extend_from_slice(&b);
        }
    }
}

#[cfg(test)]
mod tests;
