//! The roles clients see. pg_catalog.pg_roles lists `postgres`, the owner every
//! catalog row names (oid 10, as in PostgreSQL), and each configured
//! `[[server.users]]`, which may log in and read; and `current_user`,
//! `session_user`, `user` and `current_role` say who is connected (datafusion-pg-catalog
//! answers `postgres` whoever logged in).

use std::ops::ControlFlow;
use std::sync::Arc;

use datafusion::arrow::array::{new_null_array, ArrayRef, BooleanArray, Int32Array, StringArray};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::Result;
use datafusion::prelude::SessionContext;
use datafusion::sql::sqlparser::ast::{Expr, FunctionArguments, Statement, Value};

/// The owner of every table, schema and database in the catalog.
const OWNER: (&str, i32) = ("postgres", super::pg_keys::SUPERUSER);
/// The first oid given to a configured user, PostgreSQL's first for user objects.
const FIRST_USER_OID: i32 = 16384;

/// pg_catalog.pg_roles with the owner and `users`, in the shipped table's columns.
pub async fn install(ctx: &SessionContext, catalog: &str, users: &[String]) -> Result<()> {
    let shipped = super::overlay::shipped(ctx, catalog, "pg_roles").await?;
    let schema = shipped.schema();
    let mut roles = vec![(OWNER.0.to_string(), OWNER.1, true, false)];
    for (user, oid) in users.iter().zip(FIRST_USER_OID..) {
        let user = user.clone();
        if user == OWNER.0 {
            roles[0].3 = true;
        } else {
            roles.push((user, oid, false, true));
        }
    }
    let flags = |pick: fn(&(String, i32, bool, bool)) -> bool| -> ArrayRef {
        Arc::new(BooleanArray::from_iter(roles.iter().map(|r| Some(pick(r)))))
    };
    let columns: Vec<ArrayRef> = schema
        .fields()
        .iter()
        .map(|field| -> ArrayRef {
            match field.name().as_str() {
                "rolname" => Arc::new(StringArray::from_iter_values(
                    roles.iter().map(|r| r.0.as_str()),
                )),
                "oid" => Arc::new(Int32Array::from_iter_values(roles.iter().map(|r| r.1))),
                "rolsuper" | "rolcreaterole" | "rolcreatedb" | "rolbypassrls" => flags(|r| r.2),
                "rolcanlogin" => flags(|r| r.3),
                "rolinherit" => flags(|_| true),
                "rolreplication" => flags(|_| false),
                "rolconnlimit" => Arc::new(Int32Array::from_iter_values(roles.iter().map(|_| -1))),
                "rolpassword" => Arc::new(StringArray::from_iter_values(
                    roles.iter().map(|_| "********"),
                )),
                _ => new_null_array(field.data_type(), roles.len()),
            }
        })
        .collect();
    let batch = RecordBatch::try_new(schema, columns)?;
    super::overlay::replace_with_rows(ctx, catalog, "pg_roles", batch)
}

/// The registers naming the connected user, written as the string `user`. Run after
/// the output names are fixed (`output_names`), so their columns keep the register's name.
pub fn connected_user(statement: &mut Statement, user: &str) {
    let _ = crate::walk::exprs_mut(statement, |expr| {
        let register = match expr {
            Expr::Function(function)
                if matches!(function.args, FunctionArguments::None)
                    || matches!(&function.args, FunctionArguments::List(list) if list.args.is_empty()) =>
            {
                function.name.0.len() == 1
                    && function.name.0[0]
                        .as_ident()
                        .is_some_and(|i| i.quote_style.is_none() && is_register(&i.value))
            }
            Expr::Identifier(ident) => ident.quote_style.is_none() && is_register(&ident.value),
            _ => false,
        };
        if register {
            *expr = Expr::value(Value::SingleQuotedString(user.to_string()));
        }
        ControlFlow::<()>::Continue(())
    });
}

/// Whether `name` is one of the registers naming the connected user.
pub fn is_register(name: &str) -> bool {
    ["current_user", "session_user", "user", "current_role"]
        .iter()
        .any(|r| name.eq_ignore_ascii_case(r))
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
    use datafusion::sql::sqlparser::parser::Parser;

    #[test]
    fn the_registers_say_who_is_connected() {
        let mut statement = Parser::parse_sql(
            &PostgreSqlDialect {},
            "SELECT current_user, session_user, user, current_role, \"user\" FROM t",
        )
        .unwrap()
        .remove(0);
        connected_user(&mut statement, "analyst");
        assert_eq!(
            statement.to_string(),
            "SELECT 'analyst', 'analyst', 'analyst', 'analyst', \"user\" FROM t"
        );
    }
}
