with

leadspace_companies as (

    select * from {{ ref('int_leadspace_companies') }}

),

firmographics as (

    -- firmographics only where Leadspace matched a company; null for no-match and failures
    select
        account_id,
        case when is_enriched then leadspace_company_id end as leadspace_company_id,
        case when is_enriched then company_name end as company_name,
        case when is_enriched then website end as website,
        case when is_enriched then industry end as industry,
        case when is_enriched then sub_industry end as sub_industry,
        case when is_enriched then sic end as sic,
        case when is_enriched then naics end as naics,
        case when is_enriched then employee_count end as employee_count,
        case when is_enriched then employee_range end as employee_range,
        case when is_enriched then revenue_usd end as revenue_usd,
        case when is_enriched then revenue_range end as revenue_range,
        case when is_enriched then country end as country,
        case when is_enriched then state end as state,
        case when is_enriched then city end as city,
        case when is_enriched then match_confidence end as match_confidence,
        answered_at
    from leadspace_companies

),

final as (

    select
        cast(account_id as {{ dbt.type_string() }}) as "AccountId",
        cast(leadspace_company_id as {{ dbt.type_string() }}) as "LeadspaceCompanyId",
        cast(company_name as {{ dbt.type_string() }}) as "CompanyName",
        cast(website as {{ dbt.type_string() }}) as "Website",
        cast(industry as {{ dbt.type_string() }}) as "Industry",
        cast(sub_industry as {{ dbt.type_string() }}) as "SubIndustry",
        cast(sic as {{ dbt.type_string() }}) as "SIC",
        cast(naics as {{ dbt.type_string() }}) as "NAICS",
        cast(employee_count as {{ dbt.type_bigint() }}) as "EmployeeCount",
        cast(employee_range as {{ dbt.type_string() }}) as "EmployeeRange",
        cast(revenue_usd as {{ dbt.type_bigint() }}) as "RevenueUsd",
        cast(revenue_range as {{ dbt.type_string() }}) as "RevenueRange",
        cast(country as {{ dbt.type_string() }}) as "Country",
        cast(state as {{ dbt.type_string() }}) as "State",
        cast(city as {{ dbt.type_string() }}) as "City",
        cast(match_confidence as {{ dbt.type_string() }}) as "MatchConfidence",
        cast(answered_at as {{ dbt.type_timestamp() }}) as "EnrichedAt"
    from firmographics

)

select * from final
