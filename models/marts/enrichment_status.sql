with

graph_loads as (

    select * from {{ ref('int_graph_loads') }}

),

account_activity as (

    select * from {{ ref('int_account_activity') }}

),

leadspace_companies as (

    select * from {{ ref('int_leadspace_companies') }}

),

graph_landed as (

    select
        max(last_loaded_at) as last_refreshed_at,
        sum(landed_rows) as landed_rows
    from graph_loads

),

office_profiles as (

    select
        sum(case when is_active_in_window then 1 else 0 end) as profiles_enriched,
        count(*) as profiles_attempted
    from account_activity

),

office_enrichment as (

    -- the `office` enrichment, once Graph data has landed (none after `remove graph`)
    select
        'office' as enrichment,
        graph_landed.last_refreshed_at,
        office_profiles.profiles_enriched,
        office_profiles.profiles_attempted
    from graph_landed
    cross join office_profiles
    where graph_landed.landed_rows > 0

),

leadspace_profiles as (

    select
        max(answered_at) as last_refreshed_at,
        sum(case when is_enriched then 1 else 0 end) as profiles_enriched,
        count(*) as profiles_attempted
    from leadspace_companies

),

leadspace_enrichment as (

    -- the `leadspace` enrichment, once Leadspace answered for any current CRM account
    -- (none after `remove leadspace`)
    select
        'leadspace' as enrichment,
        last_refreshed_at,
        profiles_enriched,
        profiles_attempted
    from leadspace_profiles
    where profiles_attempted > 0

),

enrichments as (

    -- one row per enrichment
    select * from office_enrichment
    union all
    select * from leadspace_enrichment

),

final as (

    select
        cast(enrichment as {{ dbt.type_string() }}) as "Enrichment",
        cast(last_refreshed_at as {{ dbt.type_timestamp() }}) as "LastRefreshedAt",
        cast(coalesce(profiles_enriched, 0) as {{ dbt.type_int() }}) as "ProfilesEnriched",
        cast(profiles_attempted as {{ dbt.type_int() }}) as "ProfilesAttempted"
    from enrichments

)

select * from final
