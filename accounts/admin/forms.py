"""Forms of the user pages: a manual adjustment and a statement request."""

from django import forms

from money.amounts import parse_amount
from transactions.services.adjustments import AdjustmentKind
from wallet_project.errors import WalletError


class AdjustmentForm(forms.Form):
    """A manual credit or debit; `token` makes a repeated submission apply once."""

    direction = forms.ChoiceField(
        choices=[
            ("credit", "Credit: add money to the account"),
            ("debit", "Debit: take money from the account"),
        ],
        widget=forms.RadioSelect,
    )
    currency = forms.ChoiceField()
    amount = forms.CharField(max_length=40, help_text="A decimal amount, such as 25.00.")
    kind = forms.ChoiceField(choices=AdjustmentKind.choices)
    reason = forms.CharField(
        max_length=400,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        help_text="Required. Becomes the transaction's description and stays in the audit trail.",
    )
    token = forms.RegexField(regex=r"^[0-9a-f]{32}$", widget=forms.HiddenInput)

    def __init__(self, *args, currencies: list[str], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["currency"].choices = [(code, code) for code in currencies]

    def clean(self):
        data = super().clean()
        if "amount" in data and "currency" in data:
            try:
                data["amount"] = parse_amount(data["amount"], data["currency"])
            except (ValueError, WalletError) as exc:
                self.add_error("amount", str(exc))
        return data


class StatementForm(forms.Form):
    """One currency over whole days (UTC), both ends included."""

    currency = forms.ChoiceField()
    start = forms.DateField(label="From", widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(label="To (included)", widget=forms.DateInput(attrs={"type": "date"}))

    def __init__(self, *args, currencies: list[str], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["currency"].choices = [(code, code) for code in currencies]

    def clean(self):
        data = super().clean()
        if data.get("start") and data.get("end") and data["start"] > data["end"]:
            self.add_error("end", "The end date must not be before the start date.")
        return data
