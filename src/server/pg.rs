//! The PostgreSQL wire protocol front end, on datafusion-postgres and pgwire.
//!
//! Every connection gets its own session (its SETs are its own) cut from the shared
//! base session, which holds the live warehouse tables, kpidb's functions and
//! pg_catalog. A [`Guard`] hook runs first on every statement: it refuses what is not
//! a query, answers harmless driver settings, and plans queries itself so that the
//! query timeout covers planning. Errors are rewritten once, in [`Errors`], into a
//! SQLSTATE and a plain message.

use std::borrow::Cow;
use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bytes::{BufMut, Bytes, BytesMut};
use datafusion::common::{DFSchema, ParamValues};
use datafusion::error::DataFusionError;
use datafusion::logical_expr::{EmptyRelation, LogicalPlan};
use datafusion::prelude::SessionContext;
use datafusion::sql::parser::Statement as DFStatement;
use datafusion::sql::sqlparser::ast::{Declare, Statement};
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::parser::ParserError;
use datafusion_postgres::arrow_pg::datatypes::df::encode_dataframe;
use datafusion_postgres::hooks::cursor::CursorStatementHook;
use datafusion_postgres::hooks::set_show::SetShowHook;
use datafusion_postgres::hooks::transactions::TransactionStatementHook;
use datafusion_postgres::hooks::HookClient;
use datafusion_postgres::{DfSessionService, QueryHook};
use futures::{FutureExt, Sink, StreamExt};
use pgwire::api::auth::noop::NoopStartupHandler;
use pgwire::api::auth::sasl::scram::ScramAuth;
use pgwire::api::auth::sasl::SASLAuthStartupHandler;
use pgwire::api::auth::{DefaultServerParameterProvider, StartupHandler};
use pgwire::api::cancel::CancelHandler;
use pgwire::api::portal::{Format, Portal};
use pgwire::api::query::{ExtendedQueryHandler, SimpleQueryHandler};
use pgwire::api::results::{FieldInfo, Response, Tag};
use pgwire::api::stmt::{QueryParser, StoredStatement};
use pgwire::api::store::PortalStore;
use pgwire::api::ClientPortalStore;
use pgwire::api::Type;
use pgwire::api::METADATA_USER;
use pgwire::api::{
    ClientInfo, ConnectionManager, ErrorHandler, PgWireConnectionState, PgWireServerHandlers,
};
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use pgwire::messages::cancel::CancelRequest;
use pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};
use pgwire::types::format::FormatOptions;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, Semaphore};

use super::auth::ScramSource;
use super::budget::{self, Budget};
use super::errors::{panic_message, ClientError, Code};
use super::limits::{plan_query, Limits, Planned};
use super::metrics::Metrics;
use super::policy::{self, Verdict};
use super::Shared;
use crate::shape::Rewrite;

const PROTOCOL: &str = "pg";

/// Accepts PostgreSQL connections until the listener fails.
pub async fn run(listener: TcpListener, shared: Arc<Shared>) {
    let tls = shared.tls.clone().map(|config| {
        let mut config = (*config).clone();
        config.alpn_protocols = vec![b"postgresql".to_vec()];
        pgwire::tokio::TlsAcceptor::from(Arc::new(config))
    });
    let front = Arc::new(Front {
        shared: shared.clone(),
        manager: Arc::new(ConnectionManager::new()),
        cancels: Arc::new(Mutex::new(HashMap::new())),
        slots: Arc::new(Semaphore::new(shared.settings.max_connections)),
    });
    loop {
        let (socket, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                log::warn!("pg: accept failed: {e}");
                continue;
            }
        };
        // Answers go out as they are written: without this, a reply written in
        // pieces waits for the client's delayed acknowledgement (40 ms on Linux).
        if let Err(e) = socket.set_nodelay(true) {
            log::debug!("pg: TCP_NODELAY for {peer}: {e}");
        }
        let front = front.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            let Ok(slot) = front.slots.clone().try_acquire_owned() else {
                log::warn!("pg: refused {peer}: max_connections reached");
                refuse_connection(socket, front.shared.settings.max_connections).await;
                return;
            };
            let _open = front.shared.metrics.connection(PROTOCOL);
            let connection = Arc::new(front.connection());
            if let Err(e) = pgwire::tokio::process_socket(socket, tls, connection).await {
                log::debug!("pg: connection from {peer} ended: {e}");
            }
            drop(slot);
        });
    }
}

/// Answers a connection over the limit with PostgreSQL's "too many connections".
async fn refuse_connection(mut socket: TcpStream, max: usize) {
    let message = format!("sorry, too many clients already (max_connections = {max})");
    let mut fields = BytesMut::new();
    for (tag, value) in [
        (b'S', "FATAL"),
        (b'V', "FATAL"),
        (b'C', Code::TooManyConnections.sqlstate()),
        (b'M', message.as_str()),
    ] {
        fields.put_u8(tag);
        fields.put_slice(value.as_bytes());
        fields.put_u8(0);
    }
    fields.put_u8(0);
    let mut packet = BytesMut::new();
    packet.put_u8(b'E');
    packet.put_i32(fields.len() as i32 + 4);
    packet.put_slice(&fields);
    let _ = socket.write_all(&packet).await;
    let _ = socket.shutdown().await;
}

type CancelMap = Arc<Mutex<HashMap<(i32, Bytes), Arc<Notify>>>>;

struct Front {
    shared: Arc<Shared>,
    manager: Arc<ConnectionManager>,
    /// Running queries' cancel signals, by the key a cancel request carries.
    cancels: CancelMap,
    slots: Arc<Semaphore>,
}

impl Front {
    fn connection(&self) -> Connection {
        let cancel = Arc::new(Notify::new());
        let limits = Limits {
            timeout: self.shared.settings.query_timeout,
            cancel: cancel.clone(),
            metrics: self.shared.metrics.clone(),
            protocol: PROTOCOL,
        };
        let session = Arc::new(self.shared.session(limits.clone()));
        let guard = Arc::new(Guard {
            shared: self.shared.clone(),
            limits: limits.clone(),
        });
        let hooks: Vec<Arc<dyn QueryHook>> = vec![
            guard.clone(),
            Arc::new(CursorStatementHook),
            Arc::new(SetShowHook),
            Arc::new(TransactionStatementHook),
        ];
        let accounts = &self.shared.accounts;
        let login = if accounts.pg_required() {
            let mut parameters = DefaultServerParameterProvider::default();
            parameters.default_transaction_read_only = true;
            parameters.is_superuser = false;
            let scram = ScramAuth::new(Arc::new(ScramSource(accounts.clone())));
            Login::Scram(
                SASLAuthStartupHandler::new(Arc::new(parameters))
                    .with_scram(scram)
                    .with_connection_manager(self.manager.clone()),
            )
        } else {
            Login::Open(OpenLogin {
                manager: self.manager.clone(),
            })
        };
        let inner = Arc::new(DfSessionService::new_with_hooks(session.clone(), hooks));
        Connection {
            service: Arc::new(Service {
                parser: Arc::new(ShapedParser {
                    inner: inner.query_parser(),
                    budget: self.shared.budget.clone(),
                }),
                inner,
                budget: self.shared.budget.clone(),
                session,
                guard,
            }),
            startup: Arc::new(Startup {
                login,
                require_tls: self.shared.tls.is_some(),
                cancel,
                cancels: self.cancels.clone(),
                registered: Mutex::new(None),
                metrics: self.shared.metrics.clone(),
            }),
            cancel: Arc::new(Cancel {
                manager: self.manager.clone(),
                cancels: self.cancels.clone(),
            }),
            errors: Arc::new(Errors {
                metrics: self.shared.metrics.clone(),
            }),
        }
    }
}

/// The handlers of one connection.
struct Connection {
    service: Arc<Service>,
    startup: Arc<Startup>,
    cancel: Arc<Cancel>,
    errors: Arc<Errors>,
}

impl PgWireServerHandlers for Connection {
    fn simple_query_handler(&self) -> Arc<impl pgwire::api::query::SimpleQueryHandler> {
        self.service.clone()
    }

    fn extended_query_handler(&self) -> Arc<impl pgwire::api::query::ExtendedQueryHandler> {
        self.service.clone()
    }

    fn startup_handler(&self) -> Arc<impl StartupHandler> {
        self.startup.clone()
    }

    fn cancel_handler(&self) -> Arc<impl CancelHandler> {
        self.cancel.clone()
    }

    fn error_handler(&self) -> Arc<impl ErrorHandler> {
        self.errors.clone()
    }
}

/// datafusion-postgres's handlers, with every statement shaped ([`crate::shape`])
/// before datafusion-postgres parses it, and any panic while answering one turned
/// into an error for that statement (logged with its SQL): the connection stays
/// usable and the server keeps serving.
struct Service {
    inner: Arc<DfSessionService>,
    parser: Arc<ShapedParser>,
    budget: Arc<Budget>,
    /// The connection's session and guard, for statements that pass bound
    /// parameters to table functions ([`super::bound`]), which run here.
    session: Arc<SessionContext>,
    guard: Arc<Guard>,
}

/// The shaped SQL for `query`, or a 54001 error when it is too complex to plan.
///
/// A statement only DataFusion's own parser knows (`CREATE EXTERNAL TABLE`, `COPY … TO`
/// in its syntax) is refused here as the write it is, not left to datafusion-postgres's
/// parser to call a syntax error.
fn shaped(query: &str) -> PgWireResult<Cow<'_, str>> {
    let dialect = PostgreSqlDialect {};
    match crate::shape::rewrite(query, &dialect) {
        Ok(Rewrite::Shaped(text)) => Ok(Cow::Owned(text)),
        Ok(Rewrite::Unchanged) => Ok(Cow::Borrowed(query)),
        Ok(Rewrite::Unparsed) => {
            if let Ok(statements) = crate::shape::parse(query, &dialect) {
                for statement in &statements {
                    if let Verdict::Refuse(message) = policy::classify_df(statement) {
                        return Err(refused(message));
                    }
                }
            }
            Ok(Cow::Borrowed(query))
        }
        Err(e) => Err(user_error(&ClientError::new(
            Code::TooComplex,
            e.to_string(),
        ))),
    }
}

/// Claims what planning a long statement takes ([`budget::claim_planning`]).
fn claim_planning(budget: &Arc<Budget>, sql: &str) -> PgWireResult<Option<budget::Claim>> {
    budget::claim_planning(budget, sql).map_err(|e| user_error(&ClientError::from_datafusion(&e)))
}

/// The error a panic becomes: logged with the statement, sent as XX000.
fn panicked(sql: &str, panic: Box<dyn std::any::Any + Send>) -> PgWireError {
    let what = panic_message(panic.as_ref());
    let shown: String = sql.chars().take(2000).collect();
    log::error!("pg: internal error ({what}) answering: {shown}");
    PgWireError::UserError(Box::new(ErrorInfo::new(
        "ERROR".into(),
        Code::Internal.sqlstate().into(),
        format!("internal error in kpidb while answering this statement ({what}); the connection is still usable"),
    )))
}

/// Rows streamed after the handler returned are guarded too; columns are described
/// by the names clients are shown ([`shown_fields`]).
fn guard_rows(response: Response, sql: &str) -> Response {
    match response {
        Response::Query(mut query) => {
            if let Some(fields) = shown_fields(&query.row_schema) {
                query.row_schema = Arc::new(fields);
            }
            let rows = std::mem::replace(&mut query.data_rows, Box::pin(futures::stream::empty()));
            let sql = sql.to_string();
            query.data_rows = Box::pin(
                AssertUnwindSafe(rows)
                    .catch_unwind()
                    .map(move |row| row.unwrap_or_else(|panic| Err(panicked(&sql, panic)))),
            );
            Response::Query(query)
        }
        other => other,
    }
}

#[async_trait]
impl SimpleQueryHandler for Service {
    async fn do_query<C>(&self, client: &mut C, query: &str) -> PgWireResult<Vec<Response>>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: std::fmt::Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let query = shaped(query)?;
        let _planning = claim_planning(&self.budget, &query)?;
        match AssertUnwindSafe(SimpleQueryHandler::do_query(&*self.inner, client, &query))
            .catch_unwind()
            .await
        {
            Ok(responses) => Ok(responses?
                .into_iter()
                .map(|r| guard_rows(r, &query))
                .collect()),
            Err(panic) => Err(panicked(&query, panic)),
        }
    }
}

type PgStatement = <DfSessionService as ExtendedQueryHandler>::Statement;

#[async_trait]
impl ExtendedQueryHandler for Service {
    type Statement = PgStatement;
    type QueryParser = ShapedParser;

    fn query_parser(&self) -> Arc<Self::QueryParser> {
        self.parser.clone()
    }

    async fn do_query<C>(
        &self,
        client: &mut C,
        portal: &Portal<Self::Statement>,
        max_rows: usize,
    ) -> PgWireResult<Response>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: std::fmt::Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let sql = &portal.statement.statement.0;
        if let (_, Some((statement, plan))) = &portal.statement.statement {
            let query = matches!(policy::classify(statement), Verdict::Query);
            let sent = portal.parameter_len();
            let shown = numbered_types(plan).map(|t| t.len()).unwrap_or(sent);
            let bound = query && !super::bound::slots(statement).is_empty();
            if bound || (query && shown < sent) {
                let statement = bound.then_some(statement);
                let answer = self.with_parameters(client, portal, plan, statement);
                return match AssertUnwindSafe(answer).catch_unwind().await {
                    Ok(response) => Ok(guard_rows(response?, sql)),
                    Err(panic) => Err(panicked(sql, panic)),
                };
            }
        }
        match AssertUnwindSafe(ExtendedQueryHandler::do_query(
            &*self.inner,
            client,
            portal,
            max_rows,
        ))
        .catch_unwind()
        .await
        {
            Ok(response) => Ok(guard_rows(response?, sql)),
            Err(panic) => Err(panicked(sql, panic)),
        }
    }
}

impl Service {
    /// Runs an extended-protocol statement with its parameters read by their own
    /// numbers ([`parameters`]). A statement that passes them to table functions
    /// (`statement` given) has them put in as constants and is planned again
    /// ([`super::bound`]); otherwise the Parse-time plan takes the values. The latter
    /// serves plans that do not show every parameter the client sent (some stand only
    /// in subqueries, as in SQLAlchemy's column reflection), where datafusion-postgres
    /// would read each value as the type of the parameter at the next position it sees.
    async fn with_parameters<C>(
        &self,
        client: &C,
        portal: &Portal<PgStatement>,
        described: &LogicalPlan,
        statement: Option<&Statement>,
    ) -> PgWireResult<Response>
    where
        C: ClientInfo + Unpin + Send + Sync,
    {
        let api = |e: DataFusionError| user_error(&ClientError::from_datafusion(&e));
        let params = parameters(portal, described)?;
        let plan = match statement {
            Some(statement) => {
                let bound = super::bound::bind(statement, &params).map_err(api)?;
                self.guard.plan(&bound, &self.session, client).await?
            }
            None => Planned {
                plan: described
                    .clone()
                    .replace_params_with_values(&params)
                    .map_err(api)?,
                optimized: false,
            },
        };
        self.encoded(client, portal, plan).await
    }

    async fn encoded<C>(
        &self,
        client: &C,
        portal: &Portal<PgStatement>,
        plan: Planned,
    ) -> PgWireResult<Response>
    where
        C: ClientInfo + Unpin + Send + Sync,
    {
        let api = |e: DataFusionError| user_error(&ClientError::from_datafusion(&e));
        let frame = plan.frame(&self.session).await.map_err(api)?;
        let options = Arc::new(FormatOptions::from_client_metadata(client.metadata()));
        encode_dataframe(frame, &portal.result_column_format, Some(options))
            .await
            .map(Response::Query)
    }
}

/// The fields as clients are shown them, repeated names marked by
/// [`super::output_names`] shown bare; `None` when no name is marked.
fn shown_fields(fields: &[FieldInfo]) -> Option<Vec<FieldInfo>> {
    let marked = |f: &FieldInfo| f.name().contains(super::output_names::REPEAT_MARK);
    if !fields.iter().any(marked) {
        return None;
    }
    let bare = |f: &FieldInfo| {
        FieldInfo::new(
            super::output_names::shown(f.name()).to_string(),
            f.table_id(),
            f.column_id(),
            f.datatype().clone(),
            f.format(),
        )
        .with_format_options(f.format_options().clone())
        .with_type_size(f.type_size())
        .with_type_modifier(f.type_modifier())
    };
    Some(fields.iter().map(bare).collect())
}

/// The portal's parameter values, each `$n` read as the type the plan gives `$n`, or
/// as the client typed it where the plan does not say.
fn parameters(
    portal: &Portal<PgStatement>,
    plan: &LogicalPlan,
) -> PgWireResult<datafusion::common::ParamValues> {
    let api = |e: DataFusionError| user_error(&ClientError::from_datafusion(&e));
    let numbered = numbered_types(plan).map_err(api)?;
    let types: Vec<Option<&datafusion::arrow::datatypes::DataType>> = (1..=portal.parameter_len())
        .map(|n| numbered.get(&n).and_then(|t| t.as_ref()))
        .collect();
    datafusion_postgres::arrow_pg::datatypes::df::deserialize_parameters(portal, &types)
}

/// The plan's parameter types by number (`$3` → 3).
fn numbered_types(
    plan: &LogicalPlan,
) -> datafusion::common::Result<HashMap<usize, Option<datafusion::arrow::datatypes::DataType>>> {
    Ok(plan
        .get_parameter_types()?
        .into_iter()
        .filter_map(|(id, t)| Some((id.strip_prefix('$')?.parse().ok()?, t)))
        .collect())
}

/// datafusion-postgres's parser, given shaped SQL, and guarded like [`Service`].
struct ShapedParser {
    inner: Arc<datafusion_postgres::Parser>,
    budget: Arc<Budget>,
}

#[async_trait]
impl QueryParser for ShapedParser {
    type Statement = PgStatement;

    async fn parse_sql<C>(
        &self,
        client: &C,
        sql: &str,
        types: &[Option<Type>],
    ) -> PgWireResult<Option<Self::Statement>>
    where
        C: ClientInfo + Unpin + Send + Sync,
    {
        let sql = shaped(sql)?;
        let _planning = claim_planning(&self.budget, &sql)?;
        match AssertUnwindSafe(self.inner.parse_sql(client, &sql, types))
            .catch_unwind()
            .await
        {
            Ok(parsed) => parsed,
            Err(panic) => Err(panicked(&sql, panic)),
        }
    }

    fn get_parameter_types(&self, statement: &Self::Statement) -> PgWireResult<Vec<Type>> {
        self.inner.get_parameter_types(statement)
    }

    fn get_result_schema(
        &self,
        statement: &Self::Statement,
        column_format: Option<&Format>,
    ) -> PgWireResult<Vec<FieldInfo>> {
        let fields = self.inner.get_result_schema(statement, column_format)?;
        Ok(shown_fields(&fields).unwrap_or(fields))
    }
}

enum Login {
    Open(OpenLogin),
    Scram(SASLAuthStartupHandler<DefaultServerParameterProvider>),
}

/// No credentials configured (loopback only): any user name is accepted.
struct OpenLogin {
    manager: Arc<ConnectionManager>,
}

impl NoopStartupHandler for OpenLogin {
    fn connection_manager(&self) -> Option<Arc<ConnectionManager>> {
        Some(self.manager.clone())
    }
}

struct Startup {
    login: Login,
    require_tls: bool,
    cancel: Arc<Notify>,
    cancels: CancelMap,
    registered: Mutex<Option<(i32, Bytes)>>,
    metrics: Arc<Metrics>,
}

#[async_trait]
impl StartupHandler for Startup {
    async fn on_startup<C>(
        &self,
        client: &mut C,
        message: PgWireFrontendMessage,
    ) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: std::fmt::Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        if self.require_tls && !client.is_secure() {
            return Err(PgWireError::UserError(Box::new(ErrorInfo::new(
                "FATAL".into(),
                Code::TlsRequired.sqlstate().into(),
                "this kpidb server accepts only TLS connections: connect with sslmode=require"
                    .into(),
            ))));
        }
        let result = match &self.login {
            Login::Open(login) => login.on_startup(client, message).await,
            Login::Scram(login) => login.on_startup(client, message).await,
        };
        if result.is_err() {
            self.metrics.auth_failed(PROTOCOL);
        }
        if result.is_ok() && matches!(client.state(), PgWireConnectionState::ReadyForQuery) {
            let mut registered = self.registered.lock().unwrap_or_else(|p| p.into_inner());
            if registered.is_none() {
                let (pid, key) = client.pid_and_secret_key();
                let key = (pid, key.to_bytes());
                self.cancels
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(key.clone(), self.cancel.clone());
                *registered = Some(key);
            }
        }
        result
    }
}

impl Drop for Startup {
    fn drop(&mut self) {
        if let Some(key) = self
            .registered
            .get_mut()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            self.cancels
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&key);
        }
    }
}

/// A cancel request stops the connection's query whether it is planning or
/// sending rows.
struct Cancel {
    manager: Arc<ConnectionManager>,
    cancels: CancelMap,
}

#[async_trait]
impl CancelHandler for Cancel {
    async fn on_cancel_request(&self, request: CancelRequest) {
        let key = (request.pid, request.secret_key.to_bytes());
        let running = self
            .cancels
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
            .cloned();
        if let Some(running) = running {
            running.notify_waiters();
            self.manager.cancel(request.pid, &request.secret_key).await;
        }
    }
}

/// Rewrites engine errors into a SQLSTATE and a plain message, and counts them.
struct Errors {
    metrics: Arc<Metrics>,
}

impl ErrorHandler for Errors {
    fn on_error<C>(&self, client: &C, error: &mut PgWireError)
    where
        C: ClientInfo,
    {
        if let PgWireError::InvalidPassword(_) = error {
            // SCRAM carries no user name; say which login failed, as PostgreSQL does.
            let user = client
                .metadata()
                .get(pgwire::api::METADATA_USER)
                .cloned()
                .unwrap_or_default();
            *error = PgWireError::UserError(Box::new(ErrorInfo::new(
                "FATAL".into(),
                Code::Unauthorized.sqlstate().into(),
                format!("password authentication failed for user \"{user}\""),
            )));
        }
        if let PgWireError::ApiError(inner) = error {
            if let Some(df) = inner.downcast_ref::<DataFusionError>() {
                *error = user_error(&ClientError::from_datafusion(df));
            } else if let Some(parse) = inner.downcast_ref::<ParserError>() {
                *error = user_error(&ClientError::new(
                    Code::SyntaxError,
                    format!("SQL error: {parse}"),
                ));
            }
        }
        let code = match error {
            PgWireError::UserError(info) => info.code.clone(),
            PgWireError::QueryCanceled => Code::Cancelled.sqlstate().into(),
            _ => Code::Internal.sqlstate().into(),
        };
        log::debug!("pg: error {code}: {error}");
        self.metrics.error(PROTOCOL, &code);
    }
}

fn user_error(error: &ClientError) -> PgWireError {
    PgWireError::UserError(Box::new(ErrorInfo::new(
        "ERROR".into(),
        error.sqlstate().into(),
        error.message.clone(),
    )))
}

/// The first hook on every statement: the read-only policy, and query planning
/// under the time limit.
struct Guard {
    shared: Arc<Shared>,
    limits: Limits,
}

impl Guard {
    async fn plan(
        &self,
        statement: &Statement,
        session: &SessionContext,
        client: &(impl ClientInfo + ?Sized),
    ) -> PgWireResult<Planned> {
        let mut statement = statement.clone();
        super::output_names::name_outputs(&mut statement);
        let user = client.metadata().get(METADATA_USER).map(String::as_str);
        super::roles::connected_user(&mut statement, user.unwrap_or_default());
        super::compat::array_subqueries(&mut statement);
        super::compat::like_escapes(&mut statement);
        super::compat::subscripts(&mut statement);
        super::compat::expand_arrays(&mut statement);
        super::compat::field_access(&mut statement);
        super::compat::information_schema_views(&mut statement);
        // Before regclass_casts, which would hide the sequence's NULL in a call.
        super::compat::serial_sequences(&mut statement);
        super::compat::regclass_casts(&mut statement);
        super::compat::boolean_literals(&mut statement);
        super::compat::outer_conditions(&mut statement);
        super::compat::aggregate_scalar_subqueries(&mut statement);
        let statement = DFStatement::Statement(Box::new(statement));
        plan_query(&self.shared, session, statement, self.limits.timeout)
            .await
            .map_err(|e| user_error(&ClientError::from_datafusion(&e)))
    }
}

impl Guard {
    /// `DECLARE name CURSOR FOR query`: the query is planned like any other (the
    /// rewrites, the time limit, bound parameters, table functions' `$n` included)
    /// and its rows kept in a portal of the connection, which datafusion-postgres's
    /// FETCH and CLOSE read. psycopg's and SQLAlchemy's server-side cursors declare
    /// them with parameters over the extended protocol.
    async fn declare(
        &self,
        declares: &[Declare],
        params: &ParamValues,
        session: &SessionContext,
        client: &mut dyn HookClient,
    ) -> PgWireResult<Response> {
        let api = |e: DataFusionError| user_error(&ClientError::from_datafusion(&e));
        for declare in declares {
            let (Some(name), Some(query)) = (declare.names.first(), &declare.for_query) else {
                return Err(user_error(&ClientError::new(
                    Code::SyntaxError,
                    "DECLARE needs a cursor name and FOR a query",
                )));
            };
            let statement = Statement::Query(query.clone());
            let bound = super::bound::bind(&statement, params).map_err(api)?;
            let planned = self.plan(&bound, session, &*client).await?;
            let plan = planned
                .plan
                .replace_params_with_values(params)
                .map_err(api)?;
            let frame = Planned {
                plan: plan.clone(),
                optimized: planned.optimized,
            }
            .frame(session)
            .await
            .map_err(api)?;
            let options = Arc::new(FormatOptions::from_client_metadata(client.metadata()));
            let rows = encode_dataframe(frame, &Format::UnifiedText, Some(options)).await?;
            // The plan goes with it, so that a Describe of the portal (psycopg asks)
            // gives the cursor's columns.
            let stored = Arc::new(StoredStatement::new(
                name.value.clone(),
                (query.to_string(), Some((bound, plan))),
                vec![],
            ));
            let portal = Portal::new_cursor(name.value.clone(), stored);
            portal.start(rows).await;
            client.portal_store().put_portal(Arc::new(portal));
        }
        Ok(Response::Execution(Tag::new("DECLARE CURSOR")))
    }
}

fn empty_plan() -> LogicalPlan {
    LogicalPlan::EmptyRelation(EmptyRelation {
        produce_one_row: false,
        schema: Arc::new(DFSchema::empty()),
    })
}

/// `SHOW` with no name: PostgreSQL's syntax error, where datafusion-postgres would panic.
fn bare_show(statement: &Statement) -> Option<PgWireError> {
    match statement {
        Statement::ShowVariable { variable } if variable.is_empty() => {
            Some(user_error(&ClientError::new(
                Code::SyntaxError,
                "SHOW needs the name of a setting, e.g. SHOW search_path or SHOW ALL",
            )))
        }
        _ => None,
    }
}

/// `SHOW timezone`, one word as Metabase writes it, is answered from the session's
/// setting, which datafusion-postgres holds only once a client has set it; the
/// default, UTC (as `SHOW TIME ZONE` and `current_setting` say), is filled in first.
fn default_timezone(statement: &Statement, client: &mut dyn HookClient) {
    if let Statement::ShowVariable { variable } = statement {
        if let [name] = variable.as_slice() {
            if name.value.eq_ignore_ascii_case("timezone") {
                client
                    .metadata_mut()
                    .entry("timezone".into())
                    .or_insert_with(|| "UTC".into());
            }
        }
    }
}

fn refused(message: String) -> PgWireError {
    user_error(&ClientError::new(Code::ReadOnly, message))
}

#[async_trait]
impl QueryHook for Guard {
    async fn handle_simple_query(
        &self,
        statement: &Statement,
        session: &SessionContext,
        client: &mut dyn HookClient,
    ) -> Option<PgWireResult<Response>> {
        if let Some(e) = bare_show(statement) {
            return Some(Err(e));
        }
        default_timezone(statement, client);
        match policy::classify(statement) {
            Verdict::Refuse(message) => Some(Err(refused(message))),
            Verdict::Ignore(tag) => Some(Ok(Response::Execution(Tag::new(tag)))),
            Verdict::Session => match statement {
                Statement::Declare { stmts } => {
                    let none = ParamValues::List(vec![]);
                    Some(self.declare(stmts, &none, session, client).await)
                }
                _ => None,
            },
            Verdict::Query => {
                let planned = match self.plan(statement, session, &*client).await {
                    Ok(planned) => planned,
                    Err(e) => return Some(Err(e)),
                };
                let frame = match planned.frame(session).await {
                    Ok(frame) => frame,
                    Err(e) => return Some(Err(user_error(&ClientError::from_datafusion(&e)))),
                };
                let options = Arc::new(FormatOptions::from_client_metadata(client.metadata()));
                Some(
                    encode_dataframe(frame, &Format::UnifiedText, Some(options))
                        .await
                        .map(Response::Query),
                )
            }
        }
    }

    async fn handle_extended_parse_query(
        &self,
        statement: &Statement,
        session: &SessionContext,
        client: &(dyn ClientInfo + Send + Sync),
    ) -> Option<PgWireResult<LogicalPlan>> {
        if let Some(e) = bare_show(statement) {
            return Some(Err(e));
        }
        match policy::classify(statement) {
            Verdict::Refuse(message) => Some(Err(refused(message))),
            Verdict::Ignore(_) => Some(Ok(empty_plan())),
            Verdict::Session => None,
            Verdict::Query => {
                let slots = super::bound::slots(statement);
                // The plan is stored with the statement and run when a portal
                // executes it, after its parameters are bound.
                if slots.is_empty() {
                    return Some(self.plan(statement, session, client).await.map(|p| p.plan));
                }
                let plan = |sample: Statement| async move {
                    self.plan(&sample, session, client).await.map(|p| p.plan)
                };
                Some(super::bound::describe(statement, &slots, plan).await)
            }
        }
    }

    async fn handle_extended_query(
        &self,
        statement: &Statement,
        _plan: &LogicalPlan,
        params: &ParamValues,
        session: &SessionContext,
        client: &mut dyn HookClient,
    ) -> Option<PgWireResult<Response>> {
        default_timezone(statement, client);
        match policy::classify(statement) {
            Verdict::Refuse(message) => Some(Err(refused(message))),
            Verdict::Ignore(tag) => Some(Ok(Response::Execution(Tag::new(tag)))),
            Verdict::Session if matches!(statement, Statement::Declare { .. }) => {
                let Statement::Declare { stmts } = statement else {
                    return None;
                };
                Some(self.declare(stmts, params, session, client).await)
            }
            // Queries run in datafusion-postgres's extended path, which binds the
            // parameters and answers in the formats the client asked for; the
            // session's LimitedPlanner bounds them.
            Verdict::Session | Verdict::Query => None,
        }
    }
}
