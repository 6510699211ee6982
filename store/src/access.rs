//! Operator access: roles, users, API tokens, console sessions, tenants, device tags, device
//! scopes (as SQL filters) and the append-only audit log.
//!
//! The store knows nothing of permissions' meaning: a role's permissions are names, checked
//! by the server. What the store does own is turning a [`DeviceFilter`] into a query, so
//! that every list is filtered in the database, never after a page was read.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::db::{on, Db};
use crate::error::{Result, StoreError};
use crate::schema::{
    api_tokens, audit_log, device_tags, devices, roles, tenants, users, web_sessions,
};
use crate::sqlconv::{now, to_db, JsonText, OptUtcTs, UtcTs};

/// A set of devices, by what they report and how they are labelled. Every non-empty field
/// must hold (AND); within a field any listed value matches (OR); `parameters` must all
/// match. The empty filter is every device.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceFilter {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub oui: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub product_class: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub software_version: Vec<String>,
    /// Devices carrying any of these tags.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// Parameters the device reported with exactly these values (all of them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parameters: Vec<ParamMatch>,
    /// Devices of this tenant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// Devices whose CPE username (the one they authenticate to us with) is one of these.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cpe_username: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParamMatch {
    pub path: String,
    pub value: String,
}

impl DeviceFilter {
    /// True when the filter admits every device.
    pub fn is_everything(&self) -> bool {
        self == &DeviceFilter::default()
    }

    /// A filter for one tenant.
    pub fn tenant(name: &str) -> DeviceFilter {
        DeviceFilter {
            tenant: Some(name.to_string()),
            ..Default::default()
        }
    }
}

/// Restricts a boxed query over `devices` to the devices every filter of `$scopes`
/// (`&[DeviceFilter]`) admits. Expanded per backend inside `on!`.
macro_rules! scope_where {
    ($query:expr, $scopes:expr) => {{
        #[allow(unused_imports)]
        use diesel::prelude::*;
        let mut q = $query;
        for s in $scopes.iter() {
            let s: &$crate::access::DeviceFilter = s;
            if !s.oui.is_empty() {
                q = q.filter($crate::schema::devices::oui.eq_any(&s.oui));
            }
            if !s.product_class.is_empty() {
                q = q.filter($crate::schema::devices::product_class.eq_any(&s.product_class));
            }
            if !s.software_version.is_empty() {
                q = q.filter($crate::schema::devices::software_version.eq_any(&s.software_version));
            }
            if !s.cpe_username.is_empty() {
                q = q.filter($crate::schema::devices::cpe_username.eq_any(&s.cpe_username));
            }
            if let Some(t) = &s.tenant {
                q = q.filter($crate::schema::devices::tenant.eq(t));
            }
            if !s.tags.is_empty() {
                q = q.filter(
                    $crate::schema::devices::id.eq_any(
                        $crate::schema::device_tags::table
                            .select($crate::schema::device_tags::device_id)
                            .filter($crate::schema::device_tags::tag.eq_any(&s.tags)),
                    ),
                );
            }
            for p in &s.parameters {
                let prefix: String = p
                    .value
                    .chars()
                    .take($crate::access::INDEXED_VALUE_CHARS)
                    .collect();
                q = q.filter(
                    $crate::schema::devices::id.eq_any(
                        $crate::schema::parameters::table
                            .select($crate::schema::parameters::device_id)
                            .filter($crate::schema::parameters::path.eq(p.path.clone()))
                            .filter(
                                ::diesel::dsl::sql::<
                                    ::diesel::sql_types::Nullable<::diesel::sql_types::Text>,
                                >($crate::access::INDEXED_VALUE)
                                .eq(prefix),
                            )
                            .filter($crate::schema::parameters::value.eq(p.value.clone())),
                    ),
                );
            }
        }
        q
    }};
}
pub(crate) use scope_where;

/// See `ops::INDEXED_VALUE`: PostgreSQL indexes a prefix of parameter values.
pub(crate) const INDEXED_VALUE: &str = "substr(parameters.value, 1, 256)";
pub(crate) const INDEXED_VALUE_CHARS: usize = 256;

/// True when every filter is the empty one (no restriction at all).
pub(crate) fn unrestricted(scopes: &[DeviceFilter]) -> bool {
    scopes.iter().all(DeviceFilter::is_everything)
}

fn parse_json<T: serde::de::DeserializeOwned + Default>(what: &str, s: &str) -> T {
    serde_json::from_str(s).unwrap_or_else(|e| {
        tracing::error!(what, error = %e, "unreadable access data in the database; using none");
        T::default()
    })
}

// -- Roles ------------------------------------------------------------------

/// A role: permission names bound to a device scope.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Role {
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub permissions: Vec<String>,
    #[serde(default)]
    pub scope: DeviceFilter,
    #[serde(default)]
    pub builtin: bool,
}

type RoleTuple = (String, String, String, String, bool);

fn role_from(t: RoleTuple) -> Role {
    Role {
        permissions: parse_json("role permissions", &t.2),
        scope: parse_json("role scope", &t.3),
        name: t.0,
        description: t.1,
        builtin: t.4,
    }
}

macro_rules! role_cols {
    () => {
        (
            roles::name,
            roles::description,
            roles::permissions,
            roles::scope,
            roles::builtin,
        )
    };
}

pub(crate) fn list_roles(db: &mut Db<'_>) -> Result<Vec<Role>> {
    let rows: Vec<RoleTuple> = on!(db, |c| roles::table
        .select(role_cols!())
        .order(roles::name.asc())
        .load(c))?;
    Ok(rows.into_iter().map(role_from).collect())
}

pub(crate) fn get_role(db: &mut Db<'_>, name: &str) -> Result<Option<Role>> {
    let row: Option<RoleTuple> = on!(db, |c| roles::table
        .find(name)
        .select(role_cols!())
        .first(c)
        .optional())?;
    Ok(row.map(role_from))
}

/// Inserts or replaces a role. `create_only`: fail with `Conflict`-like `Invalid` when it
/// exists. Built-in roles are only written with `builtin = true`.
pub(crate) fn put_role(db: &mut Db<'_>, role: &Role, create_only: bool) -> Result<Role> {
    let at = to_db(now());
    let perms = serde_json::to_string(&role.permissions).unwrap_or_else(|_| "[]".into());
    let scope = serde_json::to_string(&role.scope).unwrap_or_else(|_| "{}".into());
    let existing = get_role(db, &role.name)?;
    match existing {
        Some(old) if create_only => {
            return Err(StoreError::Invalid(format!("role {} exists", old.name)))
        }
        Some(old) if old.builtin && !role.builtin => {
            return Err(StoreError::Invalid(format!(
                "role {} is built in and cannot be changed",
                old.name
            )))
        }
        Some(_) => {
            on!(db, |c| diesel::update(roles::table.find(&role.name))
                .set((
                    roles::description.eq(&role.description),
                    roles::permissions.eq(&perms),
                    roles::scope.eq(&scope),
                    roles::builtin.eq(role.builtin),
                    roles::updated_at.eq(at),
                ))
                .execute(c))?;
        }
        None => {
            on!(db, |c| diesel::insert_into(roles::table)
                .values((
                    roles::name.eq(&role.name),
                    roles::description.eq(&role.description),
                    roles::permissions.eq(&perms),
                    roles::scope.eq(&scope),
                    roles::builtin.eq(role.builtin),
                    roles::created_at.eq(at),
                    roles::updated_at.eq(at),
                ))
                .execute(c))?;
        }
    }
    Ok(role.clone())
}

/// Deletes a custom role nobody uses. `Ok(false)`: no such role.
pub(crate) fn delete_role(db: &mut Db<'_>, name: &str) -> Result<bool> {
    let Some(role) = get_role(db, name)? else {
        return Ok(false);
    };
    if role.builtin {
        return Err(StoreError::Invalid(format!(
            "role {name} is built in and cannot be deleted"
        )));
    }
    let users_n: i64 = on!(db, |c| users::table
        .filter(users::role.eq(name))
        .count()
        .get_result(c))?;
    let tokens_n: i64 = on!(db, |c| api_tokens::table
        .filter(api_tokens::role.eq(name))
        .filter(api_tokens::revoked_at.is_null())
        .count()
        .get_result(c))?;
    if users_n > 0 || tokens_n > 0 {
        return Err(StoreError::Invalid(format!(
            "role {name} is held by {users_n} user(s) and {tokens_n} token(s)"
        )));
    }
    // Revoked tokens keep their row (for the audit trail's sake) but must not block this.
    on!(db, |c| diesel::delete(
        api_tokens::table
            .filter(api_tokens::role.eq(name))
            .filter(api_tokens::revoked_at.is_not_null())
    )
    .execute(c))?;
    let n = on!(db, |c| diesel::delete(roles::table.find(name)).execute(c))?;
    Ok(n > 0)
}

// -- Users ------------------------------------------------------------------

/// A user as shown (no password hash).
#[derive(Debug, Clone, PartialEq, Serialize, Queryable, Selectable)]
#[diesel(table_name = users)]
pub struct UserRow {
    pub name: String,
    pub role: String,
    pub tenant: Option<String>,
    pub disabled: bool,
    #[diesel(deserialize_as = UtcTs)]
    pub created_at: DateTime<Utc>,
    #[diesel(deserialize_as = UtcTs)]
    pub updated_at: DateTime<Utc>,
    #[diesel(deserialize_as = OptUtcTs)]
    pub last_login_at: Option<DateTime<Utc>>,
}

/// A user with the stored password hash, for signing in.
#[derive(Clone)]
pub struct UserAuth {
    pub user: UserRow,
    pub password_hash: String,
}

impl std::fmt::Debug for UserAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserAuth")
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

/// Changes to a user; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct UserUpdate {
    pub password_hash: Option<String>,
    pub role: Option<String>,
    pub tenant: Option<Option<String>>,
    pub disabled: Option<bool>,
}

pub(crate) fn count_users(db: &mut Db<'_>) -> Result<i64> {
    Ok(on!(db, |c| users::table.count().get_result(c))?)
}

pub(crate) fn create_user(
    db: &mut Db<'_>,
    name: &str,
    password_hash: &str,
    role: &str,
    tenant: Option<&str>,
) -> Result<UserRow> {
    if get_role(db, role)?.is_none() {
        return Err(StoreError::NotFound(format!("role {role}")));
    }
    let at = to_db(now());
    Ok(on!(db, |c| diesel::insert_into(users::table)
        .values((
            users::name.eq(name),
            users::password_hash.eq(password_hash),
            users::role.eq(role),
            users::tenant.eq(tenant),
            users::disabled.eq(false),
            users::created_at.eq(at),
            users::updated_at.eq(at),
        ))
        .returning(UserRow::as_returning())
        .get_result(c))?)
}

pub(crate) fn list_users(db: &mut Db<'_>, tenant: Option<&str>) -> Result<Vec<UserRow>> {
    Ok(on!(db, |c| {
        let mut q = users::table
            .select(UserRow::as_select())
            .order(users::name.asc())
            .into_boxed();
        if let Some(t) = tenant {
            q = q.filter(users::tenant.eq(t));
        }
        q.load(c)
    })?)
}

pub(crate) fn get_user_auth(db: &mut Db<'_>, name: &str) -> Result<Option<UserAuth>> {
    let row: Option<(UserRow, String)> = on!(db, |c| users::table
        .find(name)
        .select((UserRow::as_select(), users::password_hash))
        .first(c)
        .optional())?;
    Ok(row.map(|(user, password_hash)| UserAuth {
        user,
        password_hash,
    }))
}

/// Applies `u`; returns the user after the change, `None` if unknown. Disabling a user or
/// changing its password ends its console sessions.
pub(crate) fn update_user(db: &mut Db<'_>, name: &str, u: &UserUpdate) -> Result<Option<UserRow>> {
    if get_user_auth(db, name)?.is_none() {
        return Ok(None);
    }
    if let Some(role) = &u.role {
        if get_role(db, role)?.is_none() {
            return Err(StoreError::NotFound(format!("role {role}")));
        }
    }
    let at = to_db(now());
    on!(db, |c| diesel::update(users::table.find(name))
        .set(users::updated_at.eq(at))
        .execute(c))?;
    if let Some(h) = &u.password_hash {
        on!(db, |c| diesel::update(users::table.find(name))
            .set(users::password_hash.eq(h))
            .execute(c))?;
    }
    if let Some(r) = &u.role {
        on!(db, |c| diesel::update(users::table.find(name))
            .set(users::role.eq(r))
            .execute(c))?;
    }
    if let Some(t) = &u.tenant {
        on!(db, |c| diesel::update(users::table.find(name))
            .set(users::tenant.eq(t))
            .execute(c))?;
    }
    if let Some(d) = u.disabled {
        on!(db, |c| diesel::update(users::table.find(name))
            .set(users::disabled.eq(d))
            .execute(c))?;
    }
    if u.password_hash.is_some() || u.disabled == Some(true) || u.role.is_some() {
        on!(db, |c| diesel::delete(
            web_sessions::table.filter(web_sessions::user_name.eq(name))
        )
        .execute(c))?;
    }
    Ok(get_user_auth(db, name)?.map(|a| a.user))
}

pub(crate) fn touch_login(db: &mut Db<'_>, name: &str) -> Result<()> {
    let at = to_db(now());
    on!(db, |c| diesel::update(users::table.find(name))
        .set(users::last_login_at.eq(at))
        .execute(c))?;
    Ok(())
}

// -- Console sessions -------------------------------------------------------

pub(crate) fn create_session(
    db: &mut Db<'_>,
    id_hash: &str,
    user: &str,
    expires_at: DateTime<Utc>,
    remote_addr: Option<&str>,
) -> Result<()> {
    on!(db, |c| diesel::insert_into(web_sessions::table)
        .values((
            web_sessions::id_hash.eq(id_hash),
            web_sessions::user_name.eq(user),
            web_sessions::created_at.eq(to_db(now())),
            web_sessions::expires_at.eq(to_db(expires_at)),
            web_sessions::remote_addr.eq(remote_addr),
        ))
        .execute(c))?;
    Ok(())
}

/// The user of an unexpired session, `None` when the session is unknown, expired, or its
/// user disabled.
pub(crate) fn session_user(db: &mut Db<'_>, id_hash: &str) -> Result<Option<UserRow>> {
    let at = to_db(now());
    let row: Option<String> = on!(db, |c| web_sessions::table
        .find(id_hash)
        .filter(web_sessions::expires_at.gt(at))
        .select(web_sessions::user_name)
        .first(c)
        .optional())?;
    let Some(name) = row else { return Ok(None) };
    Ok(get_user_auth(db, &name)?
        .map(|a| a.user)
        .filter(|u| !u.disabled))
}

pub(crate) fn delete_session(db: &mut Db<'_>, id_hash: &str) -> Result<bool> {
    let at = to_db(now());
    // Expired sessions go with any sign-out.
    on!(db, |c| diesel::delete(
        web_sessions::table.filter(web_sessions::expires_at.le(at))
    )
    .execute(c))?;
    let n = on!(db, |c| diesel::delete(web_sessions::table.find(id_hash))
        .execute(c))?;
    Ok(n > 0)
}

// -- API tokens -------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Serialize, Queryable, Selectable)]
#[diesel(table_name = api_tokens)]
pub struct TokenRow {
    pub id: String,
    pub name: String,
    /// The first characters of the secret, to tell tokens apart.
    pub prefix: String,
    pub role: String,
    pub tenant: Option<String>,
    pub created_by: String,
    #[diesel(deserialize_as = UtcTs)]
    pub created_at: DateTime<Utc>,
    #[diesel(deserialize_as = OptUtcTs)]
    pub expires_at: Option<DateTime<Utc>>,
    #[diesel(deserialize_as = OptUtcTs)]
    pub revoked_at: Option<DateTime<Utc>>,
    #[diesel(deserialize_as = OptUtcTs)]
    pub last_used_at: Option<DateTime<Utc>>,
}

impl TokenRow {
    /// Usable at `at`: not revoked, not expired.
    pub fn is_live(&self, at: DateTime<Utc>) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|e| e > at)
    }
}

#[derive(Debug, Clone)]
pub struct NewToken {
    pub name: String,
    pub token_hash: String,
    pub prefix: String,
    pub role: String,
    pub tenant: Option<String>,
    pub created_by: String,
    pub expires_at: Option<DateTime<Utc>>,
}

pub(crate) fn create_token(db: &mut Db<'_>, t: &NewToken) -> Result<TokenRow> {
    if get_role(db, &t.role)?.is_none() {
        return Err(StoreError::NotFound(format!("role {}", t.role)));
    }
    let id = uuid::Uuid::new_v4().to_string();
    Ok(on!(db, |c| diesel::insert_into(api_tokens::table)
        .values((
            api_tokens::id.eq(&id),
            api_tokens::name.eq(&t.name),
            api_tokens::token_hash.eq(&t.token_hash),
            api_tokens::prefix.eq(&t.prefix),
            api_tokens::role.eq(&t.role),
            api_tokens::tenant.eq(&t.tenant),
            api_tokens::created_by.eq(&t.created_by),
            api_tokens::created_at.eq(to_db(now())),
            api_tokens::expires_at.eq(t.expires_at.map(to_db)),
        ))
        .returning(TokenRow::as_returning())
        .get_result(c))?)
}

pub(crate) fn list_tokens(db: &mut Db<'_>, tenant: Option<&str>) -> Result<Vec<TokenRow>> {
    Ok(on!(db, |c| {
        let mut q = api_tokens::table
            .select(TokenRow::as_select())
            .order((api_tokens::created_at.desc(), api_tokens::id.asc()))
            .into_boxed();
        if let Some(t) = tenant {
            q = q.filter(api_tokens::tenant.eq(t));
        }
        q.load(c)
    })?)
}

pub(crate) fn token_by_hash(db: &mut Db<'_>, hash: &str) -> Result<Option<TokenRow>> {
    Ok(on!(db, |c| api_tokens::table
        .filter(api_tokens::token_hash.eq(hash))
        .select(TokenRow::as_select())
        .first(c)
        .optional())?)
}

pub(crate) fn get_token(db: &mut Db<'_>, id: &str) -> Result<Option<TokenRow>> {
    Ok(on!(db, |c| api_tokens::table
        .find(id)
        .select(TokenRow::as_select())
        .first(c)
        .optional())?)
}

/// Revokes a token; returns it (revoked), `None` when unknown.
pub(crate) fn revoke_token(db: &mut Db<'_>, id: &str) -> Result<Option<TokenRow>> {
    let at = to_db(now());
    on!(db, |c| diesel::update(api_tokens::table.find(id))
        .filter(api_tokens::revoked_at.is_null())
        .set(api_tokens::revoked_at.eq(at))
        .execute(c))?;
    get_token(db, id)
}

pub(crate) fn touch_token(db: &mut Db<'_>, id: &str, at: DateTime<Utc>) -> Result<()> {
    on!(db, |c| diesel::update(api_tokens::table.find(id))
        .set(api_tokens::last_used_at.eq(to_db(at)))
        .execute(c))?;
    Ok(())
}

// -- Tenants ----------------------------------------------------------------

/// A tenant and the rules that assign devices to it (any rule matching assigns).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tenant {
    pub name: String,
    pub rules: Vec<DeviceFilter>,
}

pub(crate) fn list_tenants(db: &mut Db<'_>) -> Result<Vec<Tenant>> {
    let rows: Vec<(String, String)> = on!(db, |c| tenants::table
        .select((tenants::name, tenants::rules))
        .order(tenants::name.asc())
        .load(c))?;
    Ok(rows
        .into_iter()
        .map(|(name, rules)| Tenant {
            rules: parse_json("tenant rules", &rules),
            name,
        })
        .collect())
}

/// Creates or replaces a tenant, then reassigns every device by the new rules.
pub(crate) fn put_tenant(db: &mut Db<'_>, t: &Tenant) -> Result<u64> {
    let at = to_db(now());
    let rules = serde_json::to_string(&t.rules).unwrap_or_else(|_| "[]".into());
    let n = on!(db, |c| diesel::update(tenants::table.find(&t.name))
        .set((tenants::rules.eq(&rules), tenants::updated_at.eq(at)))
        .execute(c))?;
    if n == 0 {
        on!(db, |c| diesel::insert_into(tenants::table)
            .values((
                tenants::name.eq(&t.name),
                tenants::rules.eq(&rules),
                tenants::created_at.eq(at),
                tenants::updated_at.eq(at),
            ))
            .execute(c))?;
    }
    assign_tenants(db, None)
}

pub(crate) fn delete_tenant(db: &mut Db<'_>, name: &str) -> Result<bool> {
    let n = on!(db, |c| diesel::delete(tenants::table.find(name)).execute(c))?;
    if n > 0 {
        assign_tenants(db, None)?;
    }
    Ok(n > 0)
}

/// Assigns devices (all, or one) to the first tenant (by name) whose rules match; devices no
/// rule matches have no tenant. Returns how many devices belong to a tenant afterwards (of
/// those considered).
pub(crate) fn assign_tenants(db: &mut Db<'_>, device: Option<&str>) -> Result<u64> {
    let tenants = list_tenants(db)?;
    macro_rules! target {
        () => {{
            let mut q = devices::table.select(devices::id).into_boxed();
            if let Some(id) = device {
                q = q.filter(devices::id.eq(id));
            }
            q
        }};
    }
    let _ = on!(db, |c| diesel::update(devices::table)
        .filter(devices::id.eq_any(target!()))
        .set(devices::tenant.eq(None::<String>))
        .execute(c))?;
    let mut assigned: u64 = 0;
    for t in &tenants {
        for rule in t.rules.iter().filter(|r| r.tenant.is_none()) {
            let rules = std::slice::from_ref(rule);
            let n = on!(db, |c| diesel::update(devices::table)
                .filter(devices::tenant.is_null())
                .filter(devices::id.eq_any(scope_where!(target!(), rules)))
                .set(devices::tenant.eq(&t.name))
                .execute(c))?;
            assigned = assigned.saturating_add(u64::try_from(n).unwrap_or(0));
        }
    }
    Ok(assigned)
}

/// Tenant of a device seen for the first time (its `tenant` is still NULL): one read of the
/// tenants, and an update only when some rule exists.
pub(crate) fn assign_new_device(db: &mut Db<'_>, id: &str) -> Result<()> {
    let any: i64 = on!(db, |c| tenants::table.count().get_result(c))?;
    if any > 0 {
        assign_tenants(db, Some(id))?;
    }
    Ok(())
}

// -- Tags ---------------------------------------------------------------------

pub(crate) fn device_tags(db: &mut Db<'_>, id: &str) -> Result<Vec<String>> {
    Ok(on!(db, |c| device_tags::table
        .filter(device_tags::device_id.eq(id))
        .select(device_tags::tag)
        .order(device_tags::tag.asc())
        .load(c))?)
}

/// Adds and removes tags of a device; `None` when the device is unknown. Returns the tags
/// after the change.
pub(crate) fn change_tags(
    db: &mut Db<'_>,
    id: &str,
    add: &[String],
    remove: &[String],
) -> Result<Option<Vec<String>>> {
    let exists: i64 = on!(db, |c| devices::table
        .filter(devices::id.eq(id))
        .count()
        .get_result(c))?;
    if exists == 0 {
        return Ok(None);
    }
    for tag in add {
        on!(db, |c| diesel::insert_into(device_tags::table)
            .values((device_tags::device_id.eq(id), device_tags::tag.eq(tag)))
            .on_conflict_do_nothing()
            .execute(c))?;
    }
    if !remove.is_empty() {
        on!(db, |c| diesel::delete(
            device_tags::table
                .filter(device_tags::device_id.eq(id))
                .filter(device_tags::tag.eq_any(remove))
        )
        .execute(c))?;
    }
    // Tags may decide a tenant.
    if !list_tenants(db)?.is_empty() {
        assign_tenants(db, Some(id))?;
    }
    device_tags(db, id).map(Some)
}

// -- Scoped device reads ------------------------------------------------------

/// True when device `id` exists and every filter admits it.
pub(crate) fn device_in_scope(db: &mut Db<'_>, id: &str, scopes: &[DeviceFilter]) -> Result<bool> {
    let n: i64 = on!(db, |c| scope_where!(
        devices::table.filter(devices::id.eq(id)).into_boxed(),
        scopes
    )
    .count()
    .get_result(c))?;
    Ok(n > 0)
}

// -- Audit log ----------------------------------------------------------------

/// One audit record to append.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct NewAudit {
    pub actor: String,
    pub remote_addr: Option<String>,
    pub action: String,
    pub target: String,
    pub devices: Vec<String>,
    /// `ok`, `denied`, `failed`, `invalid`.
    pub outcome: String,
    pub detail: Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Queryable, Selectable)]
#[diesel(table_name = audit_log)]
pub struct AuditRow {
    pub id: i64,
    #[diesel(deserialize_as = UtcTs)]
    pub at: DateTime<Utc>,
    pub actor: String,
    pub remote_addr: Option<String>,
    pub action: String,
    pub target: String,
    #[diesel(deserialize_as = JsonText)]
    pub devices: Value,
    pub outcome: String,
    #[diesel(deserialize_as = JsonText)]
    pub detail: Value,
}

/// Filters of [`Store::query_audit`](crate::Store::query_audit). Newest first; `before`
/// is the cursor (records with a smaller id).
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    pub actor: Option<String>,
    pub action: Option<String>,
    pub device: Option<String>,
    pub outcome: Option<String>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    pub before: Option<i64>,
    pub limit: i64,
}

pub(crate) fn append_audit(db: &mut Db<'_>, a: &NewAudit) -> Result<i64> {
    let devices = serde_json::to_string(&a.devices).unwrap_or_else(|_| "[]".into());
    let detail = if a.detail.is_null() {
        "{}".to_string()
    } else {
        a.detail.to_string()
    };
    Ok(on!(db, |c| diesel::insert_into(audit_log::table)
        .values((
            audit_log::at.eq(to_db(now())),
            audit_log::actor.eq(&a.actor),
            audit_log::remote_addr.eq(&a.remote_addr),
            audit_log::action.eq(&a.action),
            audit_log::target.eq(&a.target),
            audit_log::devices.eq(&devices),
            audit_log::outcome.eq(&a.outcome),
            audit_log::detail.eq(&detail),
        ))
        .returning(audit_log::id)
        .get_result(c))?)
}

pub(crate) fn query_audit(db: &mut Db<'_>, q: &AuditQuery) -> Result<Vec<AuditRow>> {
    // A device id inside the JSON array, quoted as serde_json writes it.
    let device_pattern = q.device.as_ref().map(|d| {
        let quoted = serde_json::to_string(d).unwrap_or_default();
        format!("%{}%", crate::ops::like_literal(&quoted))
    });
    Ok(on!(db, |c| {
        let mut s = audit_log::table
            .select(AuditRow::as_select())
            .order(audit_log::id.desc())
            .limit(q.limit.clamp(1, 10_000))
            .into_boxed();
        if let Some(a) = &q.actor {
            s = s.filter(audit_log::actor.eq(a));
        }
        if let Some(a) = &q.action {
            s = s.filter(audit_log::action.eq(a));
        }
        if let Some(o) = &q.outcome {
            s = s.filter(audit_log::outcome.eq(o));
        }
        if let Some(p) = &device_pattern {
            s = s.filter(audit_log::devices.like(p).escape('\\'));
        }
        if let Some(f) = q.from {
            s = s.filter(audit_log::at.ge(to_db(f)));
        }
        if let Some(t) = q.to {
            s = s.filter(audit_log::at.lt(to_db(t)));
        }
        if let Some(b) = q.before {
            s = s.filter(audit_log::id.lt(b));
        }
        s.load(c)
    })?)
}
