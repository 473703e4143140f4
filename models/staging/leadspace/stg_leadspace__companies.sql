with

source as (

    select * from {{ source('leadspace', 'answers') }}

),

renamed as (

    select

        ---------- ids
        nullif(trim(cast(external_id as {{ dbt.type_string() }})), '') as account_id,
        coalesce(
            {{ struct_field('company', 'ug_company_id') }},
            {{ struct_field('company', 'ls_id') }}
        ) as leadspace_company_id,
        _request_id as request_id,

        ---------- outcome
        status as record_status,
        enrichment_status,
        _error as error,
        coalesce(
            _error is null
            and lower(enrichment_status) in ('company enriched', 'person & company enriched'),
            false
        ) as is_enriched,

        ---------- firmographics
        {{ struct_field('company', 'name') }} as company_name,
        {{ struct_field('company', 'website') }} as website,
        {{ struct_field('company', 'industry') }} as industry,
        {{ struct_field('company', 'sub_industry') }} as sub_industry,
        {{ struct_field('company', 'sic') }} as sic,
        {{ struct_field('company', 'naics') }} as naics,
        -- a number as Leadspace sent it (`124` or `124.0`; text on engines whose nested values
        -- are JSON), through a decimal to a whole number
        cast(
            cast({{ struct_field('company', 'employees.exact') }} as {{ dbt.type_numeric() }})
            as {{ dbt.type_bigint() }}
        ) as employee_count,
        {{ struct_field('company', 'employees.range') }} as employee_range,
        cast(
            cast({{ struct_field('company', 'revenue_dollar.exact') }} as {{ dbt.type_numeric() }})
            as {{ dbt.type_bigint() }}
        ) as revenue_usd,
        {{ struct_field('company', 'revenue_dollar.range') }} as revenue_range,
        {{ struct_field('company', 'address.country') }} as country,
        {{ struct_field('company', 'address.state') }} as state,
        {{ struct_field('company', 'address.city') }} as city,
        upper({{ struct_field('company', 'matching_confidence.level') }}) as match_confidence,

        ---------- load metadata
        _run_id as run_id,
        cast(_loaded_at as {{ dbt.type_timestamp() }}) as answered_at

    from source

),

ranked as (

    -- the latest answer that did not fail; the latest failure when every answer failed
    select
        *,
        row_number() over (
            partition by account_id
            order by
                case when error is null then 0 else 1 end,
                answered_at desc,
                request_id desc
        ) as answer_rank
    from renamed
    where account_id is not null

),

final as (

    select
        account_id,
        leadspace_company_id,
        request_id,
        record_status,
        enrichment_status,
        error,
        is_enriched,
        company_name,
        website,
        industry,
        sub_industry,
        sic,
        naics,
        employee_count,
        employee_range,
        revenue_usd,
        revenue_range,
        country,
        state,
        city,
        match_confidence,
        run_id,
        answered_at
    from ranked
    where answer_rank = 1

)

select * from final
