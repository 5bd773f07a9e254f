"""The back-office console at `/admin/`: the admin site (`site`), its pages and dashboard
(`views`), the ModelAdmin building blocks (`mixins`) and its templates. An interface: it may
use any app's core; each app's admin registrations import it, never the other way round."""
