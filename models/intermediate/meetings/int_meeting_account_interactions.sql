{#- int_meeting_participants is read by name where it is used: DuckDB would keep an import CTE
    read twice whole in memory -#}
with

meetings as (

    select * from {{ ref('int_meetings') }}

),

org_sides as (

    select
        meeting_id,
        max(case when is_organizer and org_user_id is not null then 1 else 0 end) = 1
            as is_organized_by_org,
        count(distinct org_user_id) as org_people
    from {{ ref('int_meeting_participants') }}
    where org_user_id is not null
    group by meeting_id

),

account_sides as (

    select
        meeting_id,
        account_id,
        max(case when is_organizer then 1 else 0 end) = 1 as is_organized_by_account,
        count(distinct address) as account_addresses
    from {{ ref('int_meeting_participants') }}
    where account_id is not null
    group by
        meeting_id,
        account_id

),

final as (

    -- with the account: a participant of the account and an org participant (the inner join)
    select
        account_sides.meeting_id,
        account_sides.account_id,
        meetings.start_at_utc,
        meetings.start_date,
        meetings.duration_seconds,
        -- to the account: organized by an org address; from the account: by one of its own
        org_sides.is_organized_by_org as is_to_account,
        account_sides.is_organized_by_account as is_from_account,
        org_sides.org_people,
        account_sides.account_addresses
    from account_sides
    inner join org_sides
        on account_sides.meeting_id = org_sides.meeting_id
    inner join meetings
        on account_sides.meeting_id = meetings.meeting_id

)

select * from final
