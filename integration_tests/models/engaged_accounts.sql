-- A model of the user's that reads the package's output, named with the package's name
-- (a ref of `office` alone would mean the user's own model of that name).
with

office as (

    select * from {{ ref('account_engagement', 'office') }}

)

select
    office."AccountId" as account_id,
    office."EngagementScore" as engagement_score
from office
where office."AggregationLevel" = 'Year'
