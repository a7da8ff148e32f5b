//! `matrix(axis = [v1, v2], ...)` of `#[cluster_test]`: reads the axes (integer, string or bool
//! literals), matches the function's parameters to axes by name, and emits the axes as
//! `harness::Axis` constants plus compile-time checks that every value fits its parameter's type.

use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Error, Expr, FnArg, Lit, Pat, Signature, Type, UnOp};

/// One literal of an axis.
enum Value {
    /// An integer (sign applied), with the literal's tokens for the type check.
    Int(i64, TokenStream, Span),
    Str(syn::LitStr),
    Bool(syn::LitBool),
}

impl Value {
    fn label(&self) -> String {
        match self {
            Self::Int(v, ..) => v.to_string(),
            Self::Str(s) => s.value(),
            Self::Bool(b) => b.value.to_string(),
        }
    }
    fn kind(&self) -> &'static str {
        match self {
            Self::Int(..) => "integer",
            Self::Str(_) => "string",
            Self::Bool(_) => "bool",
        }
    }
    fn span(&self) -> Span {
        match self {
            Self::Int(_, _, s) => *s,
            Self::Str(s) => s.span(),
            Self::Bool(b) => b.span(),
        }
    }
    fn expr(&self) -> TokenStream {
        match self {
            Self::Int(_, ts, _) => ts.clone(),
            Self::Str(s) => quote!(#s),
            Self::Bool(b) => quote!(#b),
        }
    }
    fn param_value(&self) -> TokenStream {
        match self {
            Self::Int(v, ..) => quote!(::harness::ParamValue::Int(#v)),
            Self::Str(s) => quote!(::harness::ParamValue::Str(#s)),
            Self::Bool(b) => quote!(::harness::ParamValue::Bool(#b)),
        }
    }
}

struct Axis {
    name: String,
    values: Vec<Value>,
}

/// The parsed `matrix(...)`.
pub(crate) struct Matrix {
    /// Where `matrix` was written, for errors about it as a whole.
    pub(crate) span: Span,
    axes: Vec<Axis>,
}

fn value(e: &Expr) -> syn::Result<Value> {
    match e {
        Expr::Lit(l) => match &l.lit {
            Lit::Int(i) => Ok(Value::Int(i.base10_parse()?, quote!(#i), i.span())),
            Lit::Str(s) => {
                let v = s.value();
                if v.is_empty() || v.chars().any(|c| c.is_whitespace() || ",=[]".contains(c)) {
                    return Err(Error::new(
                        s.span(),
                        "a matrix string goes into the test's name: make it non-empty, without \
                         spaces, `,`, `=`, `[` or `]`",
                    ));
                }
                Ok(Value::Str(s.clone()))
            }
            Lit::Bool(b) => Ok(Value::Bool(b.clone())),
            other => Err(Error::new(
                other.span(),
                "a matrix value is an integer, string or bool literal",
            )),
        },
        Expr::Unary(u) if matches!(u.op, UnOp::Neg(_)) => match &*u.expr {
            Expr::Lit(syn::ExprLit {
                lit: Lit::Int(i), ..
            }) => {
                let v: i64 = i.base10_parse()?;
                Ok(Value::Int(-v, quote!(#e), e.span()))
            }
            _ => Err(Error::new(e.span(), "a matrix value is a literal")),
        },
        _ => Err(Error::new(
            e.span(),
            "a matrix value is an integer, string or bool literal",
        )),
    }
}

/// Reads `matrix(name = [..], ...)`.
pub(crate) fn parse(meta: &syn::meta::ParseNestedMeta<'_>) -> syn::Result<Matrix> {
    let mut axes: Vec<Axis> = Vec::new();
    meta.parse_nested_meta(|m| {
        let name = m
            .path
            .get_ident()
            .map(ToString::to_string)
            .ok_or_else(|| m.error("a matrix axis is a plain name: `nodes = [3, 5]`"))?;
        if axes.iter().any(|a| a.name == name) {
            return Err(m.error(format!("matrix axis `{name}` is given more than once")));
        }
        let list: syn::ExprArray = m.value()?.parse()?;
        if list.elems.is_empty() {
            return Err(Error::new(
                list.span(),
                format!("matrix axis `{name}` has no values"),
            ));
        }
        let values = list
            .elems
            .iter()
            .map(value)
            .collect::<syn::Result<Vec<_>>>()?;
        for (i, v) in values.iter().enumerate() {
            if v.kind() != values[0].kind() {
                return Err(Error::new(
                    v.span(),
                    format!(
                        "matrix axis `{name}` mixes {} and {} values",
                        values[0].kind(),
                        v.kind()
                    ),
                ));
            }
            if values[..i].iter().any(|w| w.label() == v.label()) {
                return Err(Error::new(
                    v.span(),
                    format!("`{}` is twice in axis `{name}`", v.label()),
                ));
            }
            if name == "nodes" && !matches!(v, Value::Int(n, ..) if *n >= 1) {
                return Err(Error::new(
                    v.span(),
                    "`nodes` values are node counts of at least 1",
                ));
            }
        }
        axes.push(Axis { name, values });
        Ok(())
    })?;
    if axes.is_empty() {
        return Err(meta.error("`matrix(...)` needs at least one axis: `matrix(nodes = [3, 5])`"));
    }
    Ok(Matrix {
        span: meta.path.span(),
        axes,
    })
}

impl Matrix {
    /// Whether an axis is called `name`.
    pub(crate) fn has_axis(&self, name: &str) -> bool {
        self.axes.iter().any(|a| a.name == name)
    }

    /// The parameters after the cluster (if the test takes one), each an axis, with its type.
    pub(crate) fn split_params(
        &self,
        sig: &Signature,
        has_cluster: bool,
    ) -> syn::Result<Vec<(String, Type)>> {
        let skip = usize::from(has_cluster && !sig.inputs.is_empty());
        let mut out: Vec<(String, Type)> = Vec::new();
        for input in sig.inputs.iter().skip(skip) {
            let FnArg::Typed(t) = input else {
                return Err(Error::new(
                    input.span(),
                    "a #[cluster_test] cannot take `self`",
                ));
            };
            let Pat::Ident(id) = &*t.pat else {
                return Err(Error::new(
                    t.pat.span(),
                    "a matrix parameter is a plain name, the axis's",
                ));
            };
            let name = id.ident.to_string();
            if !self.has_axis(&name) {
                let known: Vec<&str> = self.axes.iter().map(|a| a.name.as_str()).collect();
                return Err(Error::new(
                    id.ident.span(),
                    format!(
                        "`{name}` is not an axis of the matrix (axes: {})",
                        known.join(", ")
                    ),
                ));
            }
            if out.iter().any(|(n, _)| *n == name) {
                return Err(Error::new(
                    id.ident.span(),
                    format!("`{name}` is taken twice"),
                ));
            }
            out.push((name, (*t.ty).clone()));
        }
        Ok(out)
    }

    /// `&[harness::Axis { .. }, ..]`.
    pub(crate) fn axes_tokens(&self) -> TokenStream {
        let axes = self.axes.iter().map(|a| {
            let name = &a.name;
            let values = a.values.iter().map(Value::param_value);
            quote!(::harness::Axis { name: #name, values: &[#(#values),*] })
        });
        quote!(&[#(#axes),*])
    }

    /// `let _: <param type> = <value>;` for every value of every axis the test takes, so a value
    /// that doesn't fit is a compile error pointing at it.
    pub(crate) fn type_checks(&self, params: &[(String, Type)]) -> TokenStream {
        let mut lets = Vec::new();
        for (name, ty) in params {
            let Some(axis) = self.axes.iter().find(|a| &a.name == name) else {
                continue;
            };
            for v in &axis.values {
                let e = v.expr();
                lets.push(quote_spanned!(v.span() => let _: #ty = #e;));
            }
        }
        quote! {
            #[allow(clippy::let_underscore_untyped)]
            const _: () = { #(#lets)* };
        }
    }
}
