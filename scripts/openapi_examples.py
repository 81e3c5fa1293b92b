"""One example per operation of docs/openapi.json: the request body (when there is one) and the
success answer, as the gateway prints them. scripts/openapi.py checks each against the generated
schemas, so an example cannot drift from the protos. Keyed by operationId, then "request" or an
HTTP status: a body, or for an error status the message of its {error, statusCode} envelope."""

from __future__ import annotations

from typing import Any

USER = "user_2tQkLr8sV1aB9cD4eF6gH0iJ"
TASK_ID = "3f1c2a9e-7b4d-4e8a-9c61-0d5e2f7a8b90"
CREATED = "2026-01-31T12:00:00.123456Z"
RESET = "2026-02-28T12:00:00.123456Z"

FREE_PLAN = {"id": "free", "name": "Free", "monthlyCredits": 10, "isUnlimited": False}
PROFILE = {
    "id": USER,
    "email": "ada@example.com",
    "name": "Ada",
    "planName": "free",
    "createdAt": CREATED,
    "plan": FREE_PLAN,
    "currentCredits": 10,
    "creditResetAt": RESET,
}
# services/task/pricing.py: video is priced by the seconds produced when a request names a duration.
VIDEO_RULE = {
    "base": 1,
    "ratePerUnit": "1",
    "unit": "seconds",
    "inputField": "durationSeconds",
    "maximum": 120,
    "flatPrice": 5,
}


def flat_rule(price: int) -> dict[str, object]:
    return {
        "base": price,
        "ratePerUnit": "0",
        "unit": "",
        "inputField": "",
        "maximum": price,
        "flatPrice": price,
    }


TASK = {
    "id": TASK_ID,
    "userId": USER,
    "type": "video_generation",
    "status": "pending",
    "inputData": {"prompt": "a sunset over the sea", "durationSeconds": 8},
    "error": "",
    # video_generation naming durationSeconds: 1 + 1 per second reserved, settled on what was made.
    "creditsCost": 9,
    "creditsReserved": 9,
    "usage": {},
    "creditsUncharged": 0,
    "createdAt": CREATED,
    "updatedAt": CREATED,
}
DONE_TASK = {
    **TASK,
    "status": "done",
    "outputData": {"videoUrl": "https://cdn.example.com/v/3f1c2a9e.mp4"},
    "creditsCost": 8,
    "usage": {"seconds": 6.5},
    "updatedAt": "2026-01-31T12:01:30.5Z",
    "completedAt": "2026-01-31T12:01:30.5Z",
}
CANCELLED_TASK = {
    **TASK,
    "status": "cancelled",
    "updatedAt": "2026-01-31T12:00:05Z",
    "completedAt": "2026-01-31T12:00:05Z",
}

ALLOWANCE_GRANT = {
    "id": "7",
    "category": "allowance",
    "amount": 10,
    "remaining": 5,
    "priority": 20,
    "effectiveAt": CREATED,
    "expiresAt": RESET,
    "closedReason": "",
    "clawed": 0,
}
PURCHASED_GRANT = {
    "id": "9",
    "category": "purchased",
    "amount": 50,
    "remaining": 20,
    "priority": 40,
    "effectiveAt": CREATED,
    "closedReason": "",
    "clawed": 0,
}
PROMO_GRANT = {
    "id": "12",
    "category": "promotional",
    "amount": 20,
    "remaining": 20,
    "priority": 10,
    "effectiveAt": CREATED,
    "expiresAt": "2026-03-02T12:00:00Z",
    "closedReason": "",
    "clawed": 0,
}
PROMO_ENTRY = {
    "id": "57",
    "type": "credit_add",
    "amount": 20,
    "allowanceDelta": 0,
    "purchasedDelta": 0,
    "reference": "",
    "description": "20 promotional credits",
    "createdAt": CREATED,
    "balanceAfter": 45,
    "usage": 0,
    "grants": [{"grantId": "12", "category": "promotional", "amount": 20}],
    "owedDelta": 0,
}

AUTO_TOP_UP = {
    "enabled": True,
    "threshold": 20,
    "packId": "credits_50",
    "hasPaymentMethod": True,
    "armed": True,
    "failures": 0,
    "disabledReason": "",
    "setupUrl": "",
}

EXAMPLES: dict[str, dict[str, Any]] = {
    "getStatus": {
        "200": {
            "status": "ok",
            "timestamp": CREATED,
            "services": {
                "user": "serving",
                "credit": "serving",
                "task": "serving",
                "billing": "serving",
                "scheduler": "serving",
            },
        },
        "503": {
            "status": "degraded",
            "timestamp": CREATED,
            "services": {
                "user": "serving",
                "credit": "serving",
                "task": "serving",
                "billing": "unreachable",
                "scheduler": "serving",
            },
        },
    },
    "getMe": {"200": {"success": True, "user": PROFILE}},
    "initializeUser": {
        "request": {"email": "ada@example.com", "name": "Ada"},
        "201": {"success": True, "user": PROFILE, "created": True},
        "200": {"success": True, "user": PROFILE, "created": False},
        "400": "email is not a valid email address",
    },
    "getCredits": {
        "200": {
            "success": True,
            "credits": {
                "userId": USER,
                "currentCredits": 25,
                "allowanceCredits": 5,
                "purchasedCredits": 20,
                "monthlyAllowance": 10,
                "planName": "free",
                "isUnlimited": False,
                "creditsUsedThisMonth": 5,
                "creditResetAt": RESET,
                "grants": [ALLOWANCE_GRANT, PURCHASED_GRANT],
                "bonusCredits": 0,
                "owedCredits": 0,
                "reservedCredits": 9,
                "availableCredits": 25,
            },
        },
        "404": "Credit account not found; initialize the user first",
    },
    "listTransactions": {
        "200": {
            "success": True,
            "count": 2,
            "transactions": [
                {
                    "id": "42",
                    "type": "credit_use",
                    "amount": -5,
                    "allowanceDelta": -5,
                    "purchasedDelta": 0,
                    "reference": TASK_ID,
                    "description": "video_generation task",
                    "createdAt": "2026-01-31T12:00:00.2Z",
                    "balanceAfter": 5,
                    "usage": 5,
                    "grants": [{"grantId": "7", "category": "allowance", "amount": -5}],
                    "owedDelta": 0,
                },
                {
                    "id": "41",
                    "type": "credit_add",
                    "amount": 10,
                    "allowanceDelta": 10,
                    "purchasedDelta": 0,
                    "reference": "",
                    "description": "free plan allowance",
                    "createdAt": CREATED,
                    "balanceAfter": 10,
                    "usage": 0,
                    "grants": [{"grantId": "7", "category": "allowance", "amount": 10}],
                    "owedDelta": 0,
                },
            ],
            "nextCursor": "djE6NDE",
        },
        "400": "limit must be between 1 and 100",
    },
    "getNextResetDate": {
        "200": {"success": True, "nextBillingDate": RESET, "daysUntilReset": 28},
        "404": "Credit account not found; initialize the user first",
    },
    "createTask": {
        "request": {
            "type": "video_generation",
            "inputData": {"prompt": "a sunset over the sea", "durationSeconds": 8},
        },
        "201": {
            "success": True,
            "message": "Task created successfully",
            "task": TASK,
            "creditDeducted": 5,
            "remainingCredits": 5,
        },
        "400": "Invalid task type: hologram. Valid types: image_analysis, video_generation, "
        "advanced_editing",
        "402": "Insufficient credits. Required: 5, Available: 2",
        "403": "advanced_editing is not included in the free plan",
        "413": "inputData must be at most 65536 bytes",
    },
    "listTasks": {
        "200": {"success": True, "count": 1, "tasks": [TASK], "nextCursor": ""},
        "400": "Invalid status: paused. Valid statuses: pending, processing, done, failed, "
        "cancelled",
    },
    "getTaskStats": {
        "200": {
            "success": True,
            "stats": {
                "total": 3,
                "pending": 1,
                "processing": 0,
                "done": 1,
                "failed": 0,
                "cancelled": 1,
                "byType": {"video_generation": 2, "image_analysis": 1},
            },
        }
    },
    "getTask": {"200": {"success": True, "task": DONE_TASK}, "404": "Task not found"},
    "cancelTask": {
        "200": {
            "success": True,
            "message": "Task cancelled and credits refunded",
            "task": CANCELLED_TASK,
            "refundApplied": True,
        },
        "404": "Task not found",
        "409": "Cannot cancel a done task",
    },
    "updateStatus": {
        "request": {
            "status": "done",
            "outputData": {"videoUrl": "https://cdn.example.com/v/3f1c2a9e.mp4"},
        },
        "200": {"success": True, "task": DONE_TASK},
        "403": "This endpoint is for internal services only",
        "409": "Cannot change a pending task to done",
    },
    "listPlans": {
        "200": {
            "success": True,
            "plans": [
                {
                    "id": "free",
                    "name": "Free",
                    "price": 0,
                    "currency": "usd",
                    "interval": "month",
                    "monthlyCredits": 10,
                    "isUnlimited": False,
                    "features": ["image_analysis", "video_generation"],
                },
                {
                    "id": "pro",
                    "name": "Pro",
                    "price": 1999,
                    "currency": "usd",
                    "interval": "month",
                    "monthlyCredits": 100,
                    "isUnlimited": False,
                    "features": ["image_analysis", "video_generation", "advanced_editing"],
                },
            ],
            "creditPacks": [
                {
                    "id": "credits_50",
                    "credits": 50,
                    "price": 2000,
                    "currency": "usd",
                    "name": "50 credits",
                }
            ],
        }
    },
    "purchaseCredits": {
        "request": {"packId": "credits_50"},
        "200": {
            "success": True,
            "checkoutUrl": "https://checkout.stripe.com/c/pay/cs_test_a1b2c3",
            "sessionId": "cs_test_a1b2c3",
            "paymentIntentId": "",
            "status": "open",
            "credits": 50,
            "clientSecret": "",
        },
        "400": "Invalid credit pack. Valid packs: credits_10 (10 credits, $5.00); "
        "credits_50 (50 credits, $20.00); credits_100 (100 credits, $35.00); "
        "credits_500 (500 credits, $150.00)",
    },
    "upgradePlan": {
        "request": {"planName": "pro"},
        "200": {
            "success": True,
            "message": "Complete the checkout to switch to the Pro plan",
            "checkoutUrl": "https://checkout.stripe.com/c/pay/cs_test_d4e5f6",
            "sessionId": "cs_test_d4e5f6",
            "status": "checkout",
            "planName": "pro",
        },
        "400": "Unknown plan: gold. Valid plans: free, pro, enterprise",
        "409": "You are already on the Pro plan",
    },
    "listPayments": {
        "200": {
            "success": True,
            "count": 1,
            "payments": [
                {
                    "id": "pay_17",
                    "amount": 2000,
                    "currency": "usd",
                    "status": "succeeded",
                    "kind": "credits",
                    "credits": 50,
                    "planName": "",
                    "createdAt": CREATED,
                    "refundedAmount": 1000,
                    "disputeStatus": "",
                    "creditsClawedBack": 25,
                }
            ],
            "nextCursor": "",
        }
    },
    "handleWebhook": {
        "request": {
            "id": "evt_1Qx2",
            "object": "event",
            "type": "checkout.session.completed",
            "data": {"object": {"id": "cs_test_a1b2c3", "object": "checkout.session"}},
        },
        "200": {"received": True},
        "400": "Invalid Stripe signature",
    },
    "listPrices": {
        "200": {
            "success": True,
            "prices": [
                {
                    "type": "image_analysis",
                    "cost": 1,
                    "plans": ["free", "pro", "enterprise"],
                    "rule": flat_rule(1),
                },
                {
                    "type": "video_generation",
                    "cost": 5,
                    "plans": ["free", "pro", "enterprise"],
                    "rule": VIDEO_RULE,
                },
                {
                    "type": "advanced_editing",
                    "cost": 3,
                    "plans": ["pro", "enterprise"],
                    "rule": flat_rule(3),
                },
            ],
        }
    },
    "quoteTask": {
        "200": {
            "success": True,
            "type": "video_generation",
            "cost": 5,
            "allowed": False,
            "reason": "insufficient_credits",
            "message": "Insufficient credits. Required: 5, Available: 2",
            "availableCredits": 2,
            "planName": "free",
            "isUnlimited": False,
            "rule": VIDEO_RULE,
        },
        "400": "Invalid task type: hologram. Valid types: image_analysis, video_generation, "
        "advanced_editing",
    },
    "grantCredits": {
        "request": {
            "userId": USER,
            "amount": 20,
            "category": "promotional",
            "reason": "Launch week promotion",
            "expiresIn": "30d",
        },
        "201": {
            "success": True,
            "entry": PROMO_ENTRY,
            "grant": PROMO_GRANT,
            "remainingCredits": 45,
            "applied": True,
        },
        "403": "This endpoint is for administrators only",
    },
    "voidGrant": {
        "request": {"reason": "Granted to the wrong account"},
        "200": {
            "success": True,
            "entry": {
                **PROMO_ENTRY,
                "id": "58",
                "type": "void",
                "amount": -20,
                "description": "Promotional credits voided",
                "balanceAfter": 25,
                "grants": [{"grantId": "12", "category": "promotional", "amount": -20}],
            },
            "remainingCredits": 25,
            "applied": True,
        },
        "409": "Grant is already closed (voided)",
    },
    "showAccount": {
        "200": {
            "success": True,
            "credits": {
                "userId": USER,
                "currentCredits": 45,
                "allowanceCredits": 5,
                "purchasedCredits": 20,
                "monthlyAllowance": 10,
                "planName": "free",
                "isUnlimited": False,
                "creditsUsedThisMonth": 5,
                "creditResetAt": RESET,
                "grants": [PROMO_GRANT, ALLOWANCE_GRANT, PURCHASED_GRANT],
                "bonusCredits": 20,
                "owedCredits": 0,
                "reservedCredits": 0,
                "availableCredits": 45,
            },
            "grants": [PROMO_GRANT, ALLOWANCE_GRANT, PURCHASED_GRANT],
            "entries": [
                {
                    "entry": PROMO_ENTRY,
                    "actor": "admin:user_2staff0000000000000000",
                    "reason": "Launch week promotion",
                }
            ],
        },
        "404": "Credit account not found",
    },
    "listAlerts": {
        "200": {
            "alerts": [
                {
                    "id": "42",
                    "kind": "credits.low",
                    "message": "Your balance fell below 10 credits",
                    "balance": 4,
                    "threshold": 10,
                    "createdAt": CREATED,
                }
            ]
        }
    },
    "setAlertThreshold": {
        "request": {"threshold": 25, "usePlanDefault": False},
        "200": {"threshold": 25, "planDefault": False},
        "400": "threshold must be between 0 and 100000000",
    },
    "getAutoTopUp": {"200": {"autoTopUp": AUTO_TOP_UP}},
    "putAutoTopUp": {
        "request": {"enabled": True, "threshold": 20, "packId": "credits_50"},
        "200": {
            "autoTopUp": {
                **AUTO_TOP_UP,
                "hasPaymentMethod": False,
                "armed": False,
                "setupUrl": "https://checkout.stripe.com/c/pay/cs_test_a1b2c3",
            }
        },
        "400": "threshold must be between 1 and 1000000",
    },
}
