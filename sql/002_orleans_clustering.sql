-- pr2:applies-to control, membership
-- 002: Orleans cluster membership, on the control shard's databases, and on the membership database when one is
-- configured apart from them (Pr2:Silo:Membership).
-- Written for the ADO.NET clustering provider's query contract: the provider reads its queries from
-- a table named OrleansQuery (QueryKey, QueryText), binds parameters by name (@DeploymentId, @Address,
-- @Port, @Generation, @SiloName, @HostName, @Status, @ProxyPort, @StartTime, @IAmAliveTime,
-- @SuspectTimes, @Version) and reads result columns by name. Queries returning a "boolean" return a
-- count: > 0 means success. The table names below are ours; only OrleansQuery is fixed by the provider.

create table pr2_membership_version (
    deployment_id  text primary key,
    version        integer not null default 0,
    updated_at     timestamptz not null default now()
);

create table pr2_membership (
    deployment_id    text not null,
    address          text not null,
    port             integer not null,
    generation       integer not null,
    silo_name        text not null,
    host_name        text not null,
    status           integer not null,
    proxy_port       integer,
    suspect_times    text,
    start_time       timestamptz not null,
    i_am_alive_time  timestamptz not null,
    primary key (deployment_id, address, port, generation)
);

create table OrleansQuery (
    QueryKey   text primary key,
    QueryText  text not null
);

-- Concurrency: membership changes are optimistic on the table version. Each change first locks the
-- version row *only if* it still holds the version the silo read (select ... for update re-checks the
-- newest row version), changes the member row, then bumps the version only if that change happened.
-- All in one statement, so a lost race changes nothing and returns 0.
insert into OrleansQuery (QueryKey, QueryText) values
('InsertMembershipVersionKey', $q$
with inserted as (
    insert into pr2_membership_version (deployment_id) values (@DeploymentId)
    on conflict (deployment_id) do nothing
    returning 1
)
select count(*) from inserted
$q$),

('MembershipReadAllKey', $q$
select v.version as "Version",
       m.address as "Address", m.port as "Port", m.generation as "Generation",
       m.silo_name as "SiloName", m.host_name as "HostName", m.status as "Status",
       m.proxy_port as "ProxyPort", m.suspect_times as "SuspectTimes",
       m.start_time as "StartTime", m.i_am_alive_time as "IAmAliveTime"
from pr2_membership_version v
left join pr2_membership m on m.deployment_id = v.deployment_id
where v.deployment_id = @DeploymentId
$q$),

('MembershipReadRowKey', $q$
select v.version as "Version",
       m.address as "Address", m.port as "Port", m.generation as "Generation",
       m.silo_name as "SiloName", m.host_name as "HostName", m.status as "Status",
       m.proxy_port as "ProxyPort", m.suspect_times as "SuspectTimes",
       m.start_time as "StartTime", m.i_am_alive_time as "IAmAliveTime"
from pr2_membership_version v
left join pr2_membership m on m.deployment_id = v.deployment_id
    and m.address = @Address and m.port = @Port and m.generation = @Generation
where v.deployment_id = @DeploymentId
$q$),

('UpdateIAmAlivetimeKey', $q$
update pr2_membership set i_am_alive_time = @IAmAliveTime
where deployment_id = @DeploymentId and address = @Address and port = @Port and generation = @Generation
$q$),

('InsertMembershipKey', $q$
with expected as (
    select 1 from pr2_membership_version
    where deployment_id = @DeploymentId and version = @Version
    for update
), inserted as (
    insert into pr2_membership (deployment_id, address, port, generation, silo_name, host_name,
                                status, proxy_port, start_time, i_am_alive_time)
    select @DeploymentId, @Address, @Port, @Generation, @SiloName, @HostName,
           @Status, @ProxyPort, @StartTime, @IAmAliveTime
    where exists (select 1 from expected)
    on conflict do nothing
    returning 1
), bumped as (
    update pr2_membership_version set version = version + 1, updated_at = now()
    where deployment_id = @DeploymentId and exists (select 1 from inserted)
    returning 1
)
select count(*) from bumped
$q$),

('UpdateMembershipKey', $q$
with expected as (
    select 1 from pr2_membership_version
    where deployment_id = @DeploymentId and version = @Version
    for update
), updated as (
    update pr2_membership
    set status = @Status, suspect_times = @SuspectTimes, i_am_alive_time = @IAmAliveTime
    where deployment_id = @DeploymentId and address = @Address and port = @Port
      and generation = @Generation and exists (select 1 from expected)
    returning 1
), bumped as (
    update pr2_membership_version set version = version + 1, updated_at = now()
    where deployment_id = @DeploymentId and exists (select 1 from updated)
    returning 1
)
select count(*) from bumped
$q$),

('GatewaysQueryKey', $q$
select address as "Address", proxy_port as "ProxyPort", generation as "Generation"
from pr2_membership
where deployment_id = @DeploymentId and status = @Status and proxy_port > 0
$q$),

('DeleteMembershipTableEntriesKey', $q$
with members as (
    delete from pr2_membership where deployment_id = @DeploymentId
)
delete from pr2_membership_version where deployment_id = @DeploymentId
$q$),

-- Status 6 is SiloStatus.Dead: only dead silos are ever cleaned up.
('CleanupDefunctSiloEntriesKey', $q$
delete from pr2_membership
where deployment_id = @DeploymentId and i_am_alive_time < @IAmAliveTime and status = 6
$q$),

('CleanupDefunctSiloEntryKey', $q$
delete from pr2_membership
where deployment_id = @DeploymentId and address = @Address and port = @Port
  and generation = @Generation and status = 6
$q$);
