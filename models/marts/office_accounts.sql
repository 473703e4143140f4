{#- One row per CRM account, with its name and the engagement window `office` covers: what
    the customer cards (and a BI tool) show beside the figures of `office`. -#}
with

accounts as (

    select * from {{ ref('int_accounts') }}

),

window_bounds as (

    select
        period_start as window_start,
        period_end as window_end
    from {{ ref('int_periods') }}
    where aggregation_level = 'Year'

),

final as (

    select
        cast(accounts.account_id as {{ dbt.type_string() }}) as "AccountId",
        cast(accounts.account_name as {{ dbt.type_string() }}) as "AccountName",
        cast(window_bounds.window_start as date) as "WindowStartDate",
        cast(window_bounds.window_end as date) as "AsOfDate"
    from accounts
    cross join window_bounds

)

select * from final
