//! A test's matrix: its axes (`matrix(nodes = [3, 5])`), their values as written, and the
//! conversion of a value into the type of the test's parameter.

use std::fmt;

/// One value of a matrix axis, as written in the attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamValue {
    /// An integer literal.
    Int(i64),
    /// `true` or `false`.
    Bool(bool),
    /// A string literal.
    Str(&'static str),
}

impl fmt::Display for ParamValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Int(v) => write!(f, "{v}"),
            Self::Bool(v) => write!(f, "{v}"),
            Self::Str(v) => f.write_str(v),
        }
    }
}

impl ParamValue {
    /// The value as templates see it.
    pub fn to_json(self) -> serde_json::Value {
        match self {
            Self::Int(v) => v.into(),
            Self::Bool(v) => v.into(),
            Self::Str(v) => v.into(),
        }
    }
}

/// One axis of a matrix: a name and its values.
#[derive(Debug, Clone, Copy)]
pub struct Axis {
    /// The name (a parameter of the test function when the test takes it).
    pub name: &'static str,
    /// The values, in the attribute's order.
    pub values: &'static [ParamValue],
}

/// A value a test parameter can be built from; the attribute checks at compile time that
/// every value of an axis fits the parameter's type.
pub trait FromParam: Sized {
    /// Converts, or `None` when the value doesn't fit.
    fn from_param(value: ParamValue) -> Option<Self>;
}

macro_rules! from_param_int {
    ($($t:ty),*) => {$(
        impl FromParam for $t {
            fn from_param(value: ParamValue) -> Option<Self> {
                match value {
                    ParamValue::Int(v) => <$t>::try_from(v).ok(),
                    _ => None,
                }
            }
        }
    )*};
}
from_param_int!(i8, i16, i32, i64, isize, u8, u16, u32, u64, usize);

impl FromParam for bool {
    fn from_param(value: ParamValue) -> Option<Self> {
        match value {
            ParamValue::Bool(v) => Some(v),
            _ => None,
        }
    }
}

impl FromParam for &'static str {
    fn from_param(value: ParamValue) -> Option<Self> {
        match value {
            ParamValue::Str(v) => Some(v),
            _ => None,
        }
    }
}

impl FromParam for String {
    fn from_param(value: ParamValue) -> Option<Self> {
        <&str>::from_param(value).map(str::to_string)
    }
}
