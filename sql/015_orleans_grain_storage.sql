-- pr2:applies-to control, membership
-- 015: Orleans grain state (the ADO.NET grain storage provider): the journal streams' pub-sub subscriptions
-- (storage "PubSubStore") and application grains' state (storage "pr2"), in the control shard's database.
-- Written for the provider's query contract: it reads its queries from OrleansQuery (WriteToStorageKey,
-- ReadFromStorageKey, ClearStorageKey), binds parameters by name (@GrainIdN0, @GrainIdN1, @GrainTypeString,
-- @GrainIdExtensionString, @ServiceId, @GrainStateVersion, @PayloadBinary; the hashes are passed too and not
-- needed here) and reads result columns by name (PayloadBinary and Version; NewGrainStateVersion). A write or
-- clear that returns the version the grain already held, or nothing, is a version conflict.
-- The provider passes the *state name* as @GrainTypeString; PR2 registers it behind a wrapper that names the
-- grain type too (TypeScopedGrainStorage), so two grain types with the same key and state name never share a row.

create table pr2_grain_state (
    service_id     text not null,
    state_name     text not null,
    grain_id_n0    bigint not null,
    grain_id_n1    bigint not null,
    grain_id_text  text not null,          -- the key extension or string key; '' when none
    version        integer not null check (version > 0),
    payload        bytea,                  -- null after a clear
    updated_at     timestamptz not null default now(),
    primary key (service_id, state_name, grain_id_n0, grain_id_n1, grain_id_text)
);

insert into OrleansQuery (QueryKey, QueryText) values
('ReadFromStorageKey', $q$
select payload as "PayloadBinary", version as "Version"
from pr2_grain_state
where service_id = @ServiceId and state_name = @GrainTypeString
  and grain_id_n0 = @GrainIdN0 and grain_id_n1 = @GrainIdN1
  and grain_id_text = coalesce(@GrainIdExtensionString::text, '')
$q$),

('WriteToStorageKey', $q$
with inserted as (
    insert into pr2_grain_state (service_id, state_name, grain_id_n0, grain_id_n1, grain_id_text, version, payload)
    select @ServiceId, @GrainTypeString, @GrainIdN0, @GrainIdN1, coalesce(@GrainIdExtensionString::text, ''), 1, @PayloadBinary
    where @GrainStateVersion::integer is null
    on conflict do nothing
    returning version
), updated as (
    update pr2_grain_state
    set version = version + 1, payload = @PayloadBinary, updated_at = now()
    where @GrainStateVersion::integer is not null
      and service_id = @ServiceId and state_name = @GrainTypeString
      and grain_id_n0 = @GrainIdN0 and grain_id_n1 = @GrainIdN1
      and grain_id_text = coalesce(@GrainIdExtensionString::text, '')
      and version = @GrainStateVersion::integer
    returning version
)
select (select version from inserted union all select version from updated limit 1) as "NewGrainStateVersion"
$q$),

('ClearStorageKey', $q$
with inserted as (
    insert into pr2_grain_state (service_id, state_name, grain_id_n0, grain_id_n1, grain_id_text, version, payload)
    select @ServiceId, @GrainTypeString, @GrainIdN0, @GrainIdN1, coalesce(@GrainIdExtensionString::text, ''), 1, null
    where @GrainStateVersion::integer is null
    on conflict do nothing
    returning version
), updated as (
    update pr2_grain_state
    set version = version + 1, payload = null, updated_at = now()
    where @GrainStateVersion::integer is not null
      and service_id = @ServiceId and state_name = @GrainTypeString
      and grain_id_n0 = @GrainIdN0 and grain_id_n1 = @GrainIdN1
      and grain_id_text = coalesce(@GrainIdExtensionString::text, '')
      and version = @GrainStateVersion::integer
    returning version
)
select coalesce((select version from inserted union all select version from updated limit 1), @GrainStateVersion::integer)
$q$);
