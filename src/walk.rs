//! Walks over parsed SQL, compiled once for every caller.
//!
//! sqlparser's walk is generic over its visitor, and one instance of it covers the
//! whole syntax tree, a few hundred kilobytes of machine code: every visitor type,
//! and every closure given to `visit_expressions_mut`, would compile the walk again.
//! kpidb's visitors are all handed to the walk as trait objects ([`visit_mut`],
//! [`visit`]), so it is compiled once for changing a tree and once for reading one.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    Expr, ObjectName, Query, Select, Statement, TableFactor, ValueWithSpan, Visit, VisitMut,
    Visitor, VisitorMut,
};

/// Walks `node` (a statement or an expression), calling `visitor` on its parts in
/// order, and changing them as it does; `Break` if the visitor stopped the walk.
pub fn visit_mut(
    node: &mut impl VisitMut,
    visitor: &mut dyn VisitorMut<Break = ()>,
) -> ControlFlow<()> {
    node.visit(&mut DynMut(visitor))
}

/// Walks `node`, calling `visitor` on its parts in order; `Break` if the visitor
/// stopped the walk.
pub fn visit(node: &impl Visit, visitor: &mut dyn Visitor<Break = ()>) -> ControlFlow<()> {
    node.visit(&mut Dyn(visitor))
}

/// Calls `f` on every expression in `node`, each after its parts (so a rewritten
/// expression is not walked again): sqlparser's `visit_expressions_mut`.
pub fn exprs_mut(
    node: &mut impl VisitMut,
    f: impl FnMut(&mut Expr) -> ControlFlow<()>,
) -> ControlFlow<()> {
    struct After<F>(F);
    impl<F: FnMut(&mut Expr) -> ControlFlow<()>> VisitorMut for After<F> {
        type Break = ();
        fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
            (self.0)(expr)
        }
    }
    visit_mut(node, &mut After(f))
}

/// Calls `f` on every relation name in `node`: sqlparser's `visit_relations_mut`.
pub fn relations_mut(
    node: &mut impl VisitMut,
    f: impl FnMut(&mut ObjectName) -> ControlFlow<()>,
) -> ControlFlow<()> {
    struct After<F>(F);
    impl<F: FnMut(&mut ObjectName) -> ControlFlow<()>> VisitorMut for After<F> {
        type Break = ();
        fn post_visit_relation(&mut self, name: &mut ObjectName) -> ControlFlow<()> {
            (self.0)(name)
        }
    }
    visit_mut(node, &mut After(f))
}

/// The one visitor type the walk is compiled for: whatever visitor it is given.
struct DynMut<'a>(&'a mut dyn VisitorMut<Break = ()>);

impl VisitorMut for DynMut<'_> {
    type Break = ();

    fn pre_visit_query(&mut self, part: &mut Query) -> ControlFlow<()> {
        self.0.pre_visit_query(part)
    }

    fn post_visit_query(&mut self, part: &mut Query) -> ControlFlow<()> {
        self.0.post_visit_query(part)
    }

    fn pre_visit_select(&mut self, part: &mut Select) -> ControlFlow<()> {
        self.0.pre_visit_select(part)
    }

    fn post_visit_select(&mut self, part: &mut Select) -> ControlFlow<()> {
        self.0.post_visit_select(part)
    }

    fn pre_visit_relation(&mut self, part: &mut ObjectName) -> ControlFlow<()> {
        self.0.pre_visit_relation(part)
    }

    fn post_visit_relation(&mut self, part: &mut ObjectName) -> ControlFlow<()> {
        self.0.post_visit_relation(part)
    }

    fn pre_visit_table_factor(&mut self, part: &mut TableFactor) -> ControlFlow<()> {
        self.0.pre_visit_table_factor(part)
    }

    fn post_visit_table_factor(&mut self, part: &mut TableFactor) -> ControlFlow<()> {
        self.0.post_visit_table_factor(part)
    }

    fn pre_visit_expr(&mut self, part: &mut Expr) -> ControlFlow<()> {
        self.0.pre_visit_expr(part)
    }

    fn post_visit_expr(&mut self, part: &mut Expr) -> ControlFlow<()> {
        self.0.post_visit_expr(part)
    }

    fn pre_visit_statement(&mut self, part: &mut Statement) -> ControlFlow<()> {
        self.0.pre_visit_statement(part)
    }

    fn post_visit_statement(&mut self, part: &mut Statement) -> ControlFlow<()> {
        self.0.post_visit_statement(part)
    }

    fn pre_visit_value(&mut self, part: &mut ValueWithSpan) -> ControlFlow<()> {
        self.0.pre_visit_value(part)
    }

    fn post_visit_value(&mut self, part: &mut ValueWithSpan) -> ControlFlow<()> {
        self.0.post_visit_value(part)
    }
}

/// [`DynMut`] for walks that only read.
struct Dyn<'a>(&'a mut dyn Visitor<Break = ()>);

impl Visitor for Dyn<'_> {
    type Break = ();

    fn pre_visit_query(&mut self, part: &Query) -> ControlFlow<()> {
        self.0.pre_visit_query(part)
    }

    fn post_visit_query(&mut self, part: &Query) -> ControlFlow<()> {
        self.0.post_visit_query(part)
    }

    fn pre_visit_select(&mut self, part: &Select) -> ControlFlow<()> {
        self.0.pre_visit_select(part)
    }

    fn post_visit_select(&mut self, part: &Select) -> ControlFlow<()> {
        self.0.post_visit_select(part)
    }

    fn pre_visit_relation(&mut self, part: &ObjectName) -> ControlFlow<()> {
        self.0.pre_visit_relation(part)
    }

    fn post_visit_relation(&mut self, part: &ObjectName) -> ControlFlow<()> {
        self.0.post_visit_relation(part)
    }

    fn pre_visit_table_factor(&mut self, part: &TableFactor) -> ControlFlow<()> {
        self.0.pre_visit_table_factor(part)
    }

    fn post_visit_table_factor(&mut self, part: &TableFactor) -> ControlFlow<()> {
        self.0.post_visit_table_factor(part)
    }

    fn pre_visit_expr(&mut self, part: &Expr) -> ControlFlow<()> {
        self.0.pre_visit_expr(part)
    }

    fn post_visit_expr(&mut self, part: &Expr) -> ControlFlow<()> {
        self.0.post_visit_expr(part)
    }

    fn pre_visit_statement(&mut self, part: &Statement) -> ControlFlow<()> {
        self.0.pre_visit_statement(part)
    }

    fn post_visit_statement(&mut self, part: &Statement) -> ControlFlow<()> {
        self.0.post_visit_statement(part)
    }

    fn pre_visit_value(&mut self, part: &ValueWithSpan) -> ControlFlow<()> {
        self.0.pre_visit_value(part)
    }

    fn post_visit_value(&mut self, part: &ValueWithSpan) -> ControlFlow<()> {
        self.0.post_visit_value(part)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::sql::sqlparser::ast::{Ident, ObjectNamePart, Value};
    use datafusion::sql::sqlparser::dialect::GenericDialect;
    use datafusion::sql::sqlparser::parser::Parser;

    fn statement(sql: &str) -> Statement {
        Parser::parse_sql(&GenericDialect {}, sql)
            .unwrap()
            .remove(0)
    }

    #[test]
    fn expressions_are_seen_after_their_parts_and_a_break_stops_the_walk() {
        let mut s = statement("SELECT a + 1 FROM t WHERE b = (SELECT max(c) FROM u)");
        let mut seen = Vec::new();
        let _ = exprs_mut(&mut s, |e| {
            seen.push(e.to_string());
            ControlFlow::Continue(())
        });
        assert_eq!(
            seen,
            [
                "a",
                "1",
                "a + 1",
                "b",
                "c",
                "max(c)",
                "(SELECT max(c) FROM u)",
                "b = (SELECT max(c) FROM u)"
            ]
        );
        let mut count = 0;
        let stopped = exprs_mut(&mut s, |_| {
            count += 1;
            if count == 3 {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        });
        assert!(stopped.is_break());
        assert_eq!(count, 3);
    }

    #[test]
    fn rewrites_land_in_the_statement() {
        let mut s = statement("SELECT x FROM a.t JOIN b WHERE x = 1");
        let _ = exprs_mut(&mut s, |e| {
            if let Expr::Value(v) = e {
                v.value = Value::Number("2".into(), false);
            }
            ControlFlow::Continue(())
        });
        let _ = relations_mut(&mut s, |name| {
            name.0
                .insert(0, ObjectNamePart::Identifier(Ident::new("w")));
            ControlFlow::Continue(())
        });
        assert_eq!(s.to_string(), "SELECT x FROM w.a.t JOIN w.b WHERE x = 2");
    }

    #[test]
    fn a_reading_visitor_sees_table_factors_in_order() {
        struct Names(Vec<String>);
        impl Visitor for Names {
            type Break = ();
            fn pre_visit_table_factor(&mut self, factor: &TableFactor) -> ControlFlow<()> {
                self.0.push(factor.to_string());
                ControlFlow::Continue(())
            }
        }
        let s = statement("SELECT * FROM a, (SELECT * FROM b) AS s, f(1)");
        let mut names = Names(Vec::new());
        let _ = visit(&s, &mut names);
        assert_eq!(names.0, ["a", "(SELECT * FROM b) AS s", "b", "f(1)"]);
    }
}
