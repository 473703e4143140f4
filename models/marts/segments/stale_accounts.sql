{%- set stale_after_days = var('stale_after_days') | int -%}

with

office as (

    select * from {{ ref('office') }}

),

accounts as (

    select * from {{ ref('int_accounts') }}

),

year_rows as (

    select * from office
    where "AggregationLevel" = 'Year'

),

stale as (

    -- no email and no meeting for more than the threshold; never (null) counts as more
    select
        year_rows."AccountId",
        accounts.account_name,
        year_rows."DaysSinceLastEmail",
        year_rows."DaysSinceLastMeeting",
        year_rows."EngagementScore"
    from year_rows
    inner join accounts
        on year_rows."AccountId" = accounts.account_id
    where
        coalesce(year_rows."DaysSinceLastEmail" > {{ stale_after_days }}, true)
        and coalesce(year_rows."DaysSinceLastMeeting" > {{ stale_after_days }}, true)

),

final as (

    select
        cast("AccountId" as {{ dbt.type_string() }}) as "AccountId",
        cast(account_name as {{ dbt.type_string() }}) as "AccountName",
        cast("DaysSinceLastEmail" as {{ dbt.type_int() }}) as "DaysSinceLastEmail",
        cast("DaysSinceLastMeeting" as {{ dbt.type_int() }}) as "DaysSinceLastMeeting",
        cast("EngagementScore" as {{ dbt.type_int() }}) as "EngagementScore"
    from stale

)

select * from final
